"""Allocation schemes: the list, a scheme's versions and what it allocated per day, week or month,
the forms for a first version and the next one, and a consumer's local supply on its group page."""

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import BadRequest
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods

from allocation.models import AllocationMethod
from allocation.selectors import consumer_allocation, scheme_allocation, scheme_in_force, scheme_list
from allocation.services import scheme_change
from balance_groups.selectors import group_index
from core.errors import BkmError
from core.quarters import QUARTER, local_date, next_quarter_after
from dashboard.charts import consumer_chart_data, scheme_chart_data
from dashboard.scheme_forms import (
    METHOD_EXPLANATIONS,
    SchemeForm,
    consumer_lines,
)
from dashboard.service_errors import apply_service_error
from dashboard.templatetags.amounts import eur, price
from dashboard.templatetags.formatting import local_zone
from dashboard.views.common import day_window, parse_day, tenant_view, zone_name

SPANS = ("day", "week", "month")
RESOLUTIONS = {"day": "15min", "week": "1h", "month": "1d"}
INTERVAL_WORDS = {"15min": "quarter-hour", "1h": "hour", "1d": "day"}
SPAN_LABELS = {"day": gettext_lazy("Day"), "week": gettext_lazy("Week"), "month": gettext_lazy("Month")}
STATUS_WORDS = {"final": gettext_lazy("final"), "provisional": gettext_lazy("provisional")}
LISTED_CONSUMERS = 12  # a version with more consumers lists them folded


def scheme_url(code: str, **params) -> str:
    url = reverse("dashboard:scheme", args=[code])
    query = urlencode({key: value for key, value in params.items() if value})
    return f"{url}?{query}" if query else url


def _versions_or_404(tenant, code: str) -> list:
    """Every version of the tenant's scheme ``code`` (oldest first); another tenant's code is a 404."""
    versions = list(scheme_list(tenant=tenant).filter(code=code))
    if not versions:
        raise Http404(_("Allocation scheme not found."))
    return versions


def _in_force(versions, at: dt.datetime):
    return next(
        (v for v in versions if v.effective_from <= at and (v.effective_until is None or at < v.effective_until)),
        None,
    )


def _decimal_text(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def interval_count(resolution: str, count: int) -> str:
    """``96 quarter-hours``, ``1 hour``, ``31 days`` in the active language."""
    words = {
        "15min": ngettext("%(count)s quarter-hour", "%(count)s quarter-hours", count),
        "1h": ngettext("%(count)s hour", "%(count)s hours", count),
        "1d": ngettext("%(count)s day", "%(count)s days", count),
    }
    return words[resolution] % {"count": count}


def _prices_text(version) -> str:
    """The version's prices in the active language: ``local energy 27,5 ct/kWh, base fee 6,90 EUR per month``."""
    parts = []
    if version.price_local_ct_per_kwh is not None:
        parts.append(_("local energy %(price)s ct/kWh") % {"price": price(version.price_local_ct_per_kwh)})
    if version.price_residual_ct_per_kwh is not None:
        parts.append(_("residual supply %(price)s ct/kWh") % {"price": price(version.price_residual_ct_per_kwh)})
    if version.base_fee_eur_per_month is not None:
        parts.append(_("base fee %(amount)s EUR per month") % {"amount": eur(version.base_fee_eur_per_month)})
    return ", ".join(parts)


def _describe(versions, now: dt.datetime) -> list:
    """The versions newest first, each with its method explained and its place in time."""
    current = _in_force(versions, now)
    for version in versions:
        version.explanation = METHOD_EXPLANATIONS[version.method]
        version.method_label = AllocationMethod(version.method).label
        version.is_current = version is current
        version.is_future = version.effective_from > now
        version.prices_text = _prices_text(version)
        version.consumer_list = list(version.consumers.all())
        version.folded = len(version.consumer_list) > LISTED_CONSUMERS
    return list(reversed(versions))


@tenant_view
def scheme_index(request, tenant):
    by_code = defaultdict(list)
    for version in scheme_list(tenant=tenant):
        by_code[version.code].append(version)
    now = timezone.now()
    rows = []
    for code, versions in by_code.items():
        current = _in_force(versions, now)
        shown = current or versions[-1]
        rows.append(
            {
                "code": code,
                "version": shown,
                "current": current,
                "versions": len(versions),
                "sources": list(shown.sources.all()),
                "consumers": len(shown.consumers.all()),
                "explanation": METHOD_EXPLANATIONS[shown.method],
                "method_label": AllocationMethod(shown.method).label,
            }
        )
    return render(request, "dashboard/schemes.html", {"rows": rows, "zone": zone_name()})


def _period(day: dt.date, span: str):
    """``(first day, last day, UTC start, UTC end, previous day, next day)`` of the period shown."""
    if span == "month":
        first = day.replace(day=1)
        following = (first + dt.timedelta(days=32)).replace(day=1)
        previous = (first - dt.timedelta(days=1)).replace(day=1)
    else:
        step = dt.timedelta(days=1 if span == "day" else 7)
        first, following, previous = day, day + step, day - step
    start, end = day_window(first, (following - first).days)
    return first, following - dt.timedelta(days=1), start, end, previous, following


def _participant_codes(versions) -> dict:
    codes = {}
    for version in versions:
        for part in (*version.sources.all(), *version.consumers.all()):
            codes[part.group_id] = part.group.code
    return codes


def _source_rows(allocation: dict, codes: dict) -> list[dict]:
    intervals = allocation["intervals"]
    rows = []
    for position, first in enumerate(intervals[0]["sources"]):
        parts = [interval["sources"][position] for interval in intervals]
        generation = sum(part["generation_wh"] for part in parts)
        surplus = sum(part["surplus_wh"] for part in parts)
        unallocated = sum(part["unallocated_wh"] for part in parts)
        rows.append(
            {
                "pk": first["group"],
                "code": codes[first["group"]],
                "generation_wh": generation,
                "allocated_wh": generation - surplus - unallocated,
                "surplus_wh": surplus,
                "unallocated_wh": unallocated,
            }
        )
    return rows


def _consumer_rows(allocation: dict, codes: dict) -> tuple[list[dict], dict]:
    """Per consumer (in the scheme's order) and in total over the window: consumption, local,
    residual, not allocated (gaps) and the local share."""
    fields = ("consumption_wh", "local_wh", "residual_wh", "unallocated_wh")
    sums = defaultdict(lambda: dict.fromkeys(fields, 0))
    for interval in allocation["intervals"]:
        for row in interval["consumers"]:
            for field in fields:
                sums[row["group"]][field] += row[field]
    total = dict.fromkeys(fields, 0)
    rows = []
    for pk, values in sums.items():
        for field in fields:
            total[field] += values[field]
        rows.append({"pk": pk, "code": codes[pk], **values, "local_share": _share(values)})
    total["local_share"] = _share(total)
    return rows, total


def _share(values: dict) -> float | None:
    return values["local_wh"] / values["consumption_wh"] if values["consumption_wh"] > 0 else None


def _status_counts(result: dict, now: dt.datetime) -> dict:
    """Provisional intervals and quarter-hours in gaps among the intervals begun by ``now``; the
    ones ahead are counted apart (not measured yet is not a gap)."""
    begun = [interval for interval in result["intervals"] if interval["start"] < now]
    return {
        "intervals": len(result["intervals"]),
        "begun": len(begun),
        "provisional": sum(1 for interval in begun if interval["status"] != "final"),
        "gaps": sum(interval["gaps"] for interval in begun),
        "ahead": len(result["intervals"]) - len(begun),
    }


@tenant_view
def scheme_detail(request, tenant, code):
    versions = _versions_or_404(tenant, code)
    span = request.GET.get("span") if request.GET.get("span") in SPANS else "day"
    first, last, start, end, previous, following = _period(parse_day(request.GET.get("day")), span)
    resolution = RESOLUTIONS[span]
    now = timezone.now()
    try:
        allocation = scheme_allocation(scheme=versions[-1], start=start, end=end, resolution=resolution)
    except BkmError as error:  # a period at the edge of the supported range
        raise BadRequest(error.detail) from None
    codes = _participant_codes(versions)
    shown = [v for v in versions if v.effective_from < end and (v.effective_until is None or v.effective_until > start)]
    surplus_to = sorted({v.surplus_to.code for v in shown}) or [versions[-1].surplus_to.code]
    consumers, total = _consumer_rows(allocation, codes)
    described = _describe(versions, now)
    counts = _status_counts(allocation, now)
    current = _in_force(versions, now)
    context = {
        "code": code,
        "latest": versions[-1],
        "current": current,
        "current_method": AllocationMethod(current.method).label if current else None,
        "versions": described,
        "span": span,
        "first": first,
        "last": last,
        "start": start,
        "last_quarter": end - QUARTER,
        "zone": zone_name(),
        "allocation": allocation,
        "word": INTERVAL_WORDS[resolution],
        "counts": counts,
        "status_word": STATUS_WORDS.get(allocation["status"], allocation["status"]),
        "interval_texts": {key: interval_count(resolution, counts[key]) for key in ("intervals", "begun", "ahead")},
        "chart": scheme_chart_data(
            allocation,
            codes=codes,
            resolution=resolution,
            surplus_label=_("Surplus to %(codes)s") % {"codes": ", ".join(surplus_to)},
            now=now,
        ),
        "source_rows": _source_rows(allocation, codes),
        "consumer_rows": consumers,
        "total": total,
        "previous_url": scheme_url(code, day=previous.isoformat(), span=span),
        "next_url": scheme_url(code, day=following.isoformat(), span=span),
        "span_label": SPAN_LABELS[span],
        "span_urls": [(name, SPAN_LABELS[name], scheme_url(code, day=first.isoformat(), span=name)) for name in SPANS],
    }
    return render(request, "dashboard/scheme.html", context)


def _save(request, tenant, form, code: str):
    """The version through ``scheme_change``; a refusal lands at its field and answers None."""
    data = form.cleaned_data
    try:
        scheme = scheme_change(
            tenant=tenant,
            actor=request.user,
            code=code,
            name=data["name"],
            method=data["method"],
            sources=data["sources"],
            consumers=data["consumers"],
            surplus_to=data["surplus_to"],
            residual_from=data["residual_from"],
            effective_from=data["effective_from"],
            prices=data["prices"],
        )
    except BkmError as error:
        apply_service_error(form, error)
        return None
    messages.success(
        request,
        _("Scheme %(code)s: the version takes effect at %(when)s, %(utc)s UTC.")
        % {
            "code": scheme.code,
            "when": local_zone(scheme.effective_from),
            "utc": f"{scheme.effective_from.astimezone(dt.UTC):%H:%M}",
        },
    )
    return redirect(scheme_url(scheme.code, day=local_date(scheme.effective_from).isoformat()))


def _form_page(request, form, *, latest, earliest: dt.datetime):
    context = {"form": form, "latest": latest, "zone": zone_name(), "earliest": earliest}
    if latest is not None:
        context["latest_method"] = AllocationMethod(latest.method).label
        context["latest_sources"] = len(latest.sources.all())
        context["latest_consumers"] = len(latest.consumers.all())
    return render(request, "dashboard/scheme_form.html", context, status=400 if form.errors else 200)


@tenant_view
@require_http_methods(["GET", "POST"])
def scheme_create(request, tenant):
    form = SchemeForm(request.POST or None, groups=group_index(tenant=tenant), initial={"method": "dynamic"})
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"]
        if scheme_list(tenant=tenant).filter(code=code).exists():
            message = _("A scheme with code %(code)s exists already; add a version on its page.")
            form.add_error("code", message % {"code": repr(code)})
        else:
            response = _save(request, tenant, form, code)
            if response is not None:
                return response
    return _form_page(request, form, latest=None, earliest=next_quarter_after(timezone.now()))


def _initial(latest) -> dict:
    consumers = list(latest.consumers.all())
    initial = {
        "name": latest.name,
        "method": latest.method,
        "sources": "\n".join(source.group.code for source in latest.sources.all()),
        "consumers": consumer_lines(consumers),
        "surplus_to": str(latest.surplus_to_id),
        "residual_from": str(latest.residual_from_id),
    }
    for field in ("price_local_ct_per_kwh", "price_residual_ct_per_kwh", "base_fee_eur_per_month"):
        value = getattr(latest, field)
        if value is not None:
            # A Decimal without trailing zeros: the localized input shows 24,5 in German, 24.5 in English.
            initial[field] = Decimal(_decimal_text(value) if field != "base_fee_eur_per_month" else f"{value:.2f}")
    return initial


@tenant_view
@require_http_methods(["GET", "POST"])
def scheme_version_create(request, tenant, code):
    latest = _versions_or_404(tenant, code)[-1]
    form = SchemeForm(
        request.POST or None, groups=group_index(tenant=tenant), fixed_code=code, initial=_initial(latest)
    )
    if request.method == "POST" and form.is_valid():
        response = _save(request, tenant, form, code)
        if response is not None:
            return response
    earliest = max(next_quarter_after(timezone.now()), latest.effective_from + QUARTER)
    return _form_page(request, form, latest=latest, earliest=earliest)


def consumer_supply(group, *, start: dt.datetime, end: dt.datetime, span: str) -> dict | None:
    """A consumer's local supply for its group page: the chart, totals and its scheme; None when
    it takes part in no scheme in the window."""
    resolution = "15min" if span == "day" else "1h"
    allocation = consumer_allocation(group=group, start=start, end=end, resolution=resolution)
    if allocation is None:
        return None
    now = timezone.now()
    at = min(max(now, start), end - QUARTER)
    scheme = scheme_in_force(group=group, at=at) or scheme_in_force(group=group, at=start)
    fields = ("consumption_wh", "local_wh", "residual_wh", "unallocated_wh")
    totals = {field: sum(interval[field] for interval in allocation["intervals"]) for field in fields}
    return {
        "scheme": scheme,
        "up_to_date": allocation["up_to_date"],
        "totals": totals,
        "local_share": _share(totals),
        "counts": _status_counts(allocation, now),
        "word": INTERVAL_WORDS[resolution],
        "chart": consumer_chart_data(allocation, resolution=resolution, now=now),
    }
