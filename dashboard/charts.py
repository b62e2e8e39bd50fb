"""Chart data for the dashboard's charts (drawn by static/js/bkm.js with Chart.js)."""

from collections import defaultdict

from django.utils import dateformat
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from core.quarters import site_zone

TOP_CONSUMERS = 8  # a scheme chart names this many consumers and sums the rest as "others"
# The axis unit per resolution; the data stay integer Wh and the axis shows them divided by ``divisor``.
UNITS = {
    "15min": (gettext_lazy("kWh per quarter-hour"), 1000),
    "1h": (gettext_lazy("kWh per hour"), 1000),
    "1d": (gettext_lazy("kWh per day"), 1000),
}
# Django date-format characters: ``D`` is the weekday in the active language.
LABEL_FORMATS = {"1d": "D d.m.", "multi_day": "D d.m. H:i", "day": "H:i"}


def chart_texts() -> dict:
    """The words bkm.js draws (legend, tooltips), in the active language."""
    return {
        "final": _("final"),
        "provisional": _("provisional"),
        "net": _("Net"),
        "inflow": _("Inflow"),
        "outflow": _("Outflow (drawn below zero)"),
        "local": _("Local energy"),
        "residual": _("Residual supply"),
        "unallocated": _("Not allocated (gap)"),
        "status": _("Status"),
        "no_data": _("no data"),
        "gap_quarters": _("quarter-hours missing a measurement"),
    }


def _axis(intervals, resolution: str = "15min") -> dict:
    """Labels (local time), UTC starts and statuses of a selector's intervals."""
    zone = site_zone()
    if resolution == "1d":
        label_format = LABEL_FORMATS["1d"]
    else:
        multi_day = len({interval["start"].astimezone(zone).date() for interval in intervals}) > 1
        label_format = LABEL_FORMATS["multi_day" if multi_day else "day"]
    return {
        "labels": [dateformat.format(interval["start"].astimezone(zone), label_format) for interval in intervals],
        "utc": [interval["start"].isoformat() for interval in intervals],
        "status": [interval["status"] for interval in intervals],
        "resolution": resolution,
        "unit": str(UNITS[resolution][0]),
        "divisor": UNITS[resolution][1],
        "text": chart_texts(),
    }


def balance_chart_data(balance: dict, series=("inflow", "outflow", "net")) -> dict:
    """Labels (local time), per-interval values and statuses of a ``group_balance`` result."""
    intervals = balance["intervals"]
    data = {**_axis(intervals), "series": {}}
    data["empty"] = [interval["line_count"] == 0 for interval in intervals]  # no data: not a final zero
    for name in series:
        data["series"][name] = [interval[f"{name}_wh"] for interval in intervals]
    return data


def top_consumers(allocation: dict, top: int = TOP_CONSUMERS) -> tuple[list, list]:
    """The consumers a scheme chart names (most local energy first) and the ones it sums as "others".

    Naming all but one would leave an "others" of one consumer: then all are named."""
    intervals = allocation["intervals"]
    listed = [row["group"] for row in intervals[0]["consumers"]] if intervals else []
    local = defaultdict(int)
    for interval in intervals:
        for row in interval["consumers"]:
            local[row["group"]] += row["local_wh"]
    ranked = sorted(listed, key=lambda pk: -local[pk])  # stable: ties keep the scheme's order
    if len(ranked) <= top + 1:
        return ranked, []
    named = set(ranked[:top])
    return ranked[:top], [pk for pk in listed if pk not in named]


def _past_gaps(intervals, now) -> list[int]:
    """Gap counts per interval; an interval that has not begun is not measured yet, not a gap."""
    return [interval["gaps"] if interval["start"] < now else 0 for interval in intervals]


def scheme_chart_data(allocation: dict, *, codes: dict, resolution: str, surplus_label: str, now) -> dict:
    """Per source of a ``scheme_allocation`` result: its generation split into what each named
    consumer got, the others together, the surplus, and what was not allocated (gaps).

    ``series`` names the stacked parts once (the same colours in every source's chart);
    ``sources[i].data[j]`` holds part ``j`` of source ``i`` per interval."""
    intervals = allocation["intervals"]
    named, others = top_consumers(allocation)
    series = [{"key": str(pk), "label": codes[pk], "kind": "consumer"} for pk in named]
    if others:
        label = ngettext("%(count)d other consumer", "%(count)d other consumers", len(others)) % {"count": len(others)}
        series.append({"key": "others", "label": label, "kind": "others"})
    series.append({"key": "surplus", "label": surplus_label, "kind": "surplus"})
    series.append({"key": "unallocated", "label": _("Not allocated (gap)"), "kind": "gap"})
    slot = {pk: i for i, pk in enumerate(named)}
    others_slot, surplus_slot, gap_slot = len(series) - 3 if others else None, len(series) - 2, len(series) - 1
    sources = []
    source_ids = [row["group"] for row in intervals[0]["sources"]] if intervals else []
    for position, pk in enumerate(source_ids):
        data = [[0] * len(intervals) for _ in series]
        for i, interval in enumerate(intervals):
            row = interval["sources"][position]
            for item in row["allocated"]:
                data[slot.get(item["consumer"], others_slot)][i] += item["energy_wh"]
            data[surplus_slot][i] = row["surplus_wh"]
            data[gap_slot][i] = row["unallocated_wh"]
        sources.append({"code": codes[pk], "data": data})
    if all(not any(source["data"][gap_slot]) for source in sources):  # no gap: no empty legend entry
        series.pop()
        for source in sources:
            source["data"].pop()
    return {
        **_axis(intervals, resolution),
        "gaps": _past_gaps(intervals, now),
        "series": series,
        "sources": sources,
    }


def consumer_chart_data(allocation: dict, *, resolution: str, now) -> dict:
    """A consumer's consumption per interval stacked as local energy, residual supply and what is
    not allocated (gaps), from ``consumer_allocation``."""
    intervals = allocation["intervals"]
    return {
        **_axis(intervals, resolution),
        "gaps": _past_gaps(intervals, now),
        "series": {
            name: [interval[f"{name}_wh"] for interval in intervals] for name in ("local", "residual", "unallocated")
        },
    }
