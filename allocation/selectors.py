"""Reading measurements, scheme versions and what was allocated.

Figures are summed in the database per resolution bucket (``core.db.bucket_sql``: quarter-hours,
UTC hours or local days), so a month of a large site is a few thousand rows, not millions.
"""

import datetime as dt
import uuid
from collections import defaultdict

from django.db import connection
from django.db.models import Prefetch, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from allocation.models import (
    AllocationScheme,
    CorrectionLine,
    DayFlow,
    DayValue,
    Interchange,
    Measurement,
    SchemeConsumer,
    SchemeSource,
)
from balance_groups.models import BalanceGroup
from balance_groups.selectors import group_get
from core.db import EPOCH_DAY, bucket_sql, epoch_sql, in_list, in_params, sql_values
from core.errors import NotFound
from core.quarters import (
    QUARTER_SECONDS,
    bucket_start,
    buckets,
    from_epoch,
    local_date,
    require_aligned,
    require_window,
    to_epoch,
)
from core.status import Status
from settlement.selectors import stale_days

FINAL, PROVISIONAL = Status.FINAL.value, Status.PROVISIONAL.value


def measurement_list(*, tenant, group=None, start=None, end=None, quality=None, status=None):
    """A tenant's measurements ordered by (quarter-hour, group code); filters as the API names them."""
    rows = Measurement.objects.filter(tenant=tenant).select_related("group")
    if group is not None:
        rows = rows.filter(group=group if isinstance(group, BalanceGroup) else group_get(tenant=tenant, ref=group))
    if start is not None:
        rows = rows.filter(quarter_start__gte=require_aligned(start, "start"))
    if end is not None:
        rows = rows.filter(quarter_start__lt=require_aligned(end, "end"))
    if quality is not None:
        rows = rows.filter(quality=quality)
    if status is not None:
        rows = rows.filter(status=status)
    return rows.order_by("quarter_start", "group__code")


def group_has_measurements_outside(*, group, valid_from: dt.datetime, valid_until: dt.datetime | None) -> bool:
    outside = Q(quarter_start__lt=valid_from)
    if valid_until is not None:
        outside |= Q(quarter_start__gte=valid_until)
    return Measurement.objects.filter(group=group).filter(outside).exists()


def with_participants(versions):
    return versions.select_related("surplus_to", "residual_from").prefetch_related(
        Prefetch("sources", queryset=SchemeSource.objects.select_related("group").order_by("position")),
        Prefetch("consumers", queryset=SchemeConsumer.objects.select_related("group").order_by("position")),
    )


def scheme_list(*, tenant):
    """Every version of every scheme of the tenant, by code and start."""
    return with_participants(AllocationScheme.objects.filter(tenant=tenant)).order_by("code", "effective_from")


def scheme_get(*, tenant, pk) -> AllocationScheme:
    scheme = scheme_list(tenant=tenant).filter(pk=pk).first()
    if scheme is None:
        raise NotFound(_("Allocation scheme not found."))
    return scheme


def scheme_versions(*, scheme: AllocationScheme, start=None, end=None) -> list[AllocationScheme]:
    """The versions of ``scheme``'s contract (its code), optionally those overlapping ``[start, end)``."""
    versions = AllocationScheme.objects.filter(tenant_id=scheme.tenant_id, code=scheme.code)
    if start is not None:
        versions = versions.filter(effective_from__lt=end).filter(
            Q(effective_until__isnull=True) | Q(effective_until__gt=start)
        )
    return list(with_participants(versions).order_by("effective_from"))


def scheme_in_force(*, group: BalanceGroup, at: dt.datetime) -> AllocationScheme | None:
    """The scheme version a consumer or source takes part in at ``at``."""
    versions = AllocationScheme.objects.filter(effective_from__lte=at).filter(
        Q(effective_until__isnull=True) | Q(effective_until__gt=at)
    )
    return (
        with_participants(versions.filter(Q(consumers__group=group) | Q(sources__group=group)).distinct())
        .order_by("effective_from")
        .first()
    )


def quarters_in_force(versions, start: dt.datetime, end: dt.datetime) -> list[tuple]:
    """``(version, first epoch, end epoch)`` of each version clipped to the window."""
    spans = []
    for version in versions:
        lo = max(start, version.effective_from)
        hi = end if version.effective_until is None else min(end, version.effective_until)
        if lo < hi:
            spans.append((version, to_epoch(lo), to_epoch(hi)))
    return spans


def _run(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def allocated_quarters(spans) -> set[int]:
    """Epochs at which every participant of the version in force has a measurement."""
    allocated = set()
    field = Measurement._meta.get_field("quarter_start")
    for version, lo, hi in spans:
        groups = [p.group_id for p in (*version.sources.all(), *version.consumers.all())]
        epoch = epoch_sql("quarter_start")
        rows = _run(
            f"SELECT {epoch} FROM allocation_measurement WHERE group_id IN ({in_list('g', len(groups))}) "  # noqa: S608
            "AND quarter_start >= %(lo)s AND quarter_start < %(hi)s GROUP BY quarter_start HAVING COUNT(*) = %(n)s",
            {
                **in_params("g", sql_values(Measurement._meta.get_field("group"), groups)),
                "lo": sql_values(field, [from_epoch(lo)])[0],
                "hi": sql_values(field, [from_epoch(hi)])[0],
                "n": len(groups),
            },
        )
        allocated.update(row[0] for row in rows)
    return allocated


def _window_params(start, end) -> dict:
    field = Measurement._meta.get_field("quarter_start")
    return {"lo": sql_values(field, [start])[0], "hi": sql_values(field, [end])[0]}


def _by_day(start: dt.datetime, end: dt.datetime, resolution: str) -> bool:
    """Whether the window is read in whole local days, which the engine's day totals serve."""
    return resolution == "1d" and bucket_start(start, "1d") == start and bucket_start(end, "1d") == end


def day_number(day_start: dt.datetime) -> int:
    """The ``1d`` bucket number of ``core.db.bucket_sql`` for a local day's start."""
    return (local_date(day_start) - EPOCH_DAY).days


def _measured(group_ids, version_ids, start, end, resolution) -> dict:
    """``{(bucket, group_id): (Wh, quarter-hours, provisional ones)}`` of the groups' measurements
    (whole days from the engine's ``DayValue`` of the versions, else from the measurements)."""
    if _by_day(start, end, resolution):
        found = defaultdict(lambda: [0, 0, 0])
        rows = DayValue.objects.filter(
            scheme_id__in=version_ids, group_id__in=group_ids, day_start__gte=start, day_start__lt=end
        ).values_list("day_start", "group_id", "energy_wh", "provisional")
        for day, group_id, wh, provisional in rows:
            total = found[(day_number(day), group_id)]
            total[0] += wh
            total[2] += provisional
        return {key: tuple(total) for key, total in found.items()}
    bucket, _ = bucket_sql(epoch_sql("quarter_start"), resolution, start, end)
    rows = _run(
        f"SELECT {bucket}, group_id, SUM(energy_wh), COUNT(*), "  # noqa: S608
        f"SUM(CASE WHEN status = 'final' THEN 0 ELSE 1 END) FROM allocation_measurement "
        f"WHERE group_id IN ({in_list('g', len(group_ids))}) AND quarter_start >= %(lo)s AND quarter_start < %(hi)s "
        f"GROUP BY {bucket}, group_id",
        {**in_params("g", sql_values(Measurement._meta.get_field("group"), group_ids)), **_window_params(start, end)},
    )
    return {(b, as_uuid(g)): (int(wh), count, int(provisional)) for b, g, wh, count, provisional in rows}


def _flows(version_ids, start, end, resolution, *, destination=None) -> dict:
    """``{(bucket, source_id, destination_id): (Wh, provisional lines)}`` of the versions' allocations
    (whole days from the engine's ``DayFlow``, else from the allocation bookings)."""
    if _by_day(start, end, resolution):
        days = DayFlow.objects.filter(scheme_id__in=version_ids, day_start__gte=start, day_start__lt=end)
        if destination is not None:
            days = days.filter(destination_id=destination)
        found = defaultdict(lambda: [0, 0])
        for day, source, target, wh, provisional in days.values_list(
            "day_start", "source_id", "destination_id", "energy_wh", "provisional"
        ):
            total = found[(day_number(day), source, target)]
            total[0] += wh
            total[1] += provisional
        return {key: tuple(total) for key, total in found.items()}
    bucket, _ = bucket_sql(epoch_sql("k.quarter_start"), resolution, start, end)
    params = {
        **in_params("v", sql_values(AllocationScheme._meta.pk, version_ids)),
        **_window_params(start, end),
    }
    where = ""
    if destination is not None:
        where = "AND k.destination_id = %(dst)s "
        params["dst"] = sql_values(Measurement._meta.get_field("group"), [destination])[0]
    rows = _run(
        f"SELECT {bucket}, k.source_id, k.destination_id, SUM(l.energy_wh), "  # noqa: S608
        "SUM(CASE WHEN l.is_final THEN 0 ELSE 1 END) FROM allocation_allocationbooking k "
        "JOIN transactions_ledgerline l ON l.booking_id = k.booking_id "
        f"WHERE k.scheme_id IN ({in_list('v', len(version_ids))}) AND k.quarter_start >= %(lo)s "
        f"AND k.quarter_start < %(hi)s {where}GROUP BY {bucket}, k.source_id, k.destination_id",
        params,
    )
    return {(b, as_uuid(s), as_uuid(d)): (int(wh), int(provisional)) for b, s, d, wh, provisional in rows}


def as_uuid(value) -> uuid.UUID:
    """An id as a UUID whatever the backend returns (SQLite's raw rows hold it as hex text)."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def ordered_union(lists) -> list:
    seen, ordered = set(), []
    for items in lists:
        for item in items:
            if item not in seen:
                seen.add(item)
                ordered.append(item)
    return ordered


def _interval_index(start: dt.datetime, end: dt.datetime, resolution: str):
    """The window's intervals, and a function from a SQL bucket number to an interval's position."""
    intervals = list(buckets(start, end, resolution))
    position = {to_epoch(lo): i for i, (lo, _) in enumerate(intervals)}
    bucket_start = bucket_sql("0", resolution, start, end)[1]
    window = to_epoch(start)

    def index_of(bucket: int) -> int:
        return position[max(to_epoch(bucket_start(bucket)), window)]

    return intervals, index_of


def scheme_allocation(*, scheme: AllocationScheme, start, end, resolution: str = "15min") -> dict:
    """What the scheme (every version of its code) allocated over ``[start, end)``, per bucket.

    Per interval and source: generation, surplus and the part allocated to each consumer; per
    consumer: consumption, the local part, the residual from the supplier, and what is unallocated
    (consumption of quarter-hours that are gaps). ``gaps`` counts the quarter-hours (that are over) in which a
    participant's measurement is missing: they are not allocated, never taken as zero. An interval
    is final when it has no gap, every measurement and allocation in it is final and it is up to date.
    """
    start, end = require_window(start, end)
    stale = stale_days(tenant_id=scheme.tenant_id, start=start, end=end)  # read first: see group_balance
    versions = scheme_versions(scheme=scheme, start=start, end=end)
    intervals, index_of = _interval_index(start, end, resolution)
    spans = quarters_in_force(versions, start, end)
    sources = ordered_union([p.group for p in v.sources.all()] for v in versions)
    consumers = ordered_union([p.group for p in v.consumers.all()] for v in versions)
    source_ids, consumer_ids = {g.pk for g in sources}, {g.pk for g in consumers}
    gaps, provisional = gap_counts(spans, intervals), [0] * len(intervals)
    version_ids = [v.pk for v in versions]
    measured = (
        _measured([g.pk for g in (*sources, *consumers)], version_ids, start, end, resolution) if versions else {}
    )
    flows = _flows(version_ids, start, end, resolution) if versions else {}

    generation = defaultdict(int)
    consumption = defaultdict(int)
    for (bucket, group_id), (wh, _count, open_) in measured.items():
        i = index_of(bucket)
        (generation if group_id in source_ids else consumption)[(i, group_id)] += wh
        provisional[i] += open_
    parts, surplus, local, residual = defaultdict(int), defaultdict(int), defaultdict(int), defaultdict(int)
    for (bucket, source, destination), (wh, open_) in flows.items():
        i = index_of(bucket)
        provisional[i] += open_
        if source in source_ids and destination in consumer_ids:
            parts[(i, source, destination)] += wh
            local[(i, destination)] += wh
        elif source in source_ids:
            surplus[(i, source)] += wh
        else:
            residual[(i, destination)] += wh

    out = []
    for i, (lo, hi) in enumerate(intervals):
        stale_here = any(d0 < hi and lo < d1 for d0, d1 in stale)
        source_rows = []
        for group in sources:
            given = [{"consumer": c.pk, "energy_wh": parts[(i, group.pk, c.pk)]} for c in consumers]
            made, left = generation[(i, group.pk)], surplus[(i, group.pk)]
            source_rows.append(
                {
                    "group": group.pk,
                    "generation_wh": made,
                    "surplus_wh": left,
                    "unallocated_wh": made - left - sum(item["energy_wh"] for item in given),
                    "allocated": given,
                }
            )
        consumer_rows = []
        for group in consumers:
            used, own, bought = consumption[(i, group.pk)], local[(i, group.pk)], residual[(i, group.pk)]
            consumer_rows.append(
                {
                    "group": group.pk,
                    "consumption_wh": used,
                    "local_wh": own,
                    "residual_wh": bought,
                    "unallocated_wh": used - own - bought,
                }
            )
        final = not (gaps[i] or provisional[i] or stale_here)
        out.append(
            {
                "start": lo,
                "end": hi,
                "status": FINAL if final else PROVISIONAL,
                "gaps": gaps[i],
                "sources": source_rows,
                "consumers": consumer_rows,
            }
        )
    return {
        "scheme": scheme.pk,
        "code": scheme.code,
        "start": start,
        "end": end,
        "status": FINAL if all(item["status"] == FINAL for item in out) else PROVISIONAL,
        "up_to_date": not stale,
        "intervals": out,
    }


def gap_counts(spans, intervals) -> list[int]:
    """Per interval, the quarter-hours of the versions in force in which a participant's measurement
    is missing. A quarter-hour that is not over yet cannot have its values: it is no gap."""
    gaps = [0] * len(intervals)
    allocated = allocated_quarters(spans) if spans else set()
    ended_by = to_epoch(timezone.now()) - QUARTER_SECONDS + 1  # starts before this have ended
    for _version, lo, hi in spans:
        for epoch in range(lo, min(hi, ended_by), QUARTER_SECONDS):
            if epoch not in allocated:
                gaps[_locate(intervals, epoch)] += 1
    return gaps


def _locate(intervals, epoch: int) -> int:
    """Position of the interval holding ``epoch`` (intervals are consecutive and sorted)."""
    lo, hi = 0, len(intervals) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if to_epoch(intervals[mid][0]) <= epoch:
            lo = mid
        else:
            hi = mid - 1
    return lo


def consumer_allocation(*, group: BalanceGroup, start, end, resolution: str = "1d") -> dict | None:
    """A consumer's consumption split into local energy and residual supply, per bucket; None when
    the consumer takes part in no scheme in the window. ``gaps`` counts the quarter-hours its scheme
    left unallocated (a participant's measurement missing, the consumer's own included)."""
    start, end = require_window(start, end)
    versions = list(
        with_participants(
            AllocationScheme.objects.filter(consumers__group=group, effective_from__lt=end)
            .filter(Q(effective_until__isnull=True) | Q(effective_until__gt=start))
            .distinct()
        )
    )
    if not versions:
        return None
    stale = stale_days(tenant_id=group.tenant_id, start=start, end=end)
    intervals, index_of = _interval_index(start, end, resolution)
    source_ids = {p.group_id for v in versions for p in v.sources.all()}
    rows = [{"start": lo, "end": hi, "consumption_wh": 0, "local_wh": 0, "residual_wh": 0} for lo, hi in intervals]
    open_ = [0] * len(rows)
    gaps = gap_counts(quarters_in_force(versions, start, end), intervals)
    measured = _measured([group.pk], [v.pk for v in versions], start, end, resolution)
    for (bucket, _group), (wh, _count, provisional) in measured.items():
        rows[index_of(bucket)]["consumption_wh"] += wh
        open_[index_of(bucket)] += provisional
    for (bucket, source, _consumer), (wh, provisional) in _flows(
        [v.pk for v in versions], start, end, resolution, destination=group.pk
    ).items():
        rows[index_of(bucket)]["local_wh" if source in source_ids else "residual_wh"] += wh
        open_[index_of(bucket)] += provisional
    for row, provisional, missing in zip(rows, open_, gaps, strict=True):
        row["unallocated_wh"] = row["consumption_wh"] - row["local_wh"] - row["residual_wh"]
        row["gaps"] = missing
        stale_here = any(d0 < row["end"] and row["start"] < d1 for d0, d1 in stale)
        row["status"] = PROVISIONAL if provisional or missing or row["unallocated_wh"] or stale_here else FINAL
    return {"group": group.pk, "start": start, "end": end, "up_to_date": not stale, "intervals": rows}


def interchange_list(*, tenant):
    """The tenant's received MSCONS interchanges, newest first, without their bytes."""
    return Interchange.objects.filter(tenant=tenant).defer("content")


def correction_lines(*, consumer_ids, start: dt.datetime, end: dt.datetime) -> dict:
    """``{consumer id: [{"corrects", "scheme", "local_wh", "residual_wh", "quarter_hours"}]}``: the
    corrections booked in ``[start, end)`` to each consumer, per corrected local month ("YYYY-MM")
    and scheme version, by month and version start. The energies are changes (new - old) of the
    energy from the version's sources (local) and from its ``residual_from`` to the consumer;
    ``quarter_hours`` counts the corrected quarter-hours. Consumers without corrections are left out.
    (An allocation pair always ends at a consumer, so the consumer is the line's destination.)"""
    start, end = require_window(start, end)
    rows = CorrectionLine.objects.filter(
        destination_id__in=list(consumer_ids), correction__booked_start__gte=start, correction__booked_start__lt=end
    ).values_list(
        "correction__scheme_id", "correction__quarter_start", "source_id", "destination_id", "old_wh", "new_wh"
    )
    rows = list(rows)
    versions = {v.pk: v for v in with_participants(AllocationScheme.objects.filter(pk__in={row[0] for row in rows}))}
    found: dict = {}
    for scheme_id, quarter, source, consumer, old_wh, new_wh in rows:
        version = versions[scheme_id]
        if not any(c.group_id == consumer for c in version.consumers.all()):
            continue  # e.g. a consumer of another scheme that receives this one's surplus
        month = f"{local_date(quarter):%Y-%m}"
        entry = found.setdefault((consumer, month, version.effective_from, scheme_id), [0, 0, set()])
        if any(s.group_id == source for s in version.sources.all()):
            entry[0] += new_wh - old_wh
        elif source == version.residual_from_id:
            entry[1] += new_wh - old_wh
        entry[2].add(quarter)
    out: dict = defaultdict(list)
    for (consumer, month, _v, scheme_id), (local, residual, quarters) in sorted(found.items(), key=_by_month_version):
        out[consumer].append(
            {
                "corrects": month,
                "scheme": scheme_id,
                "local_wh": local,
                "residual_wh": residual,
                "quarter_hours": len(quarters),
            }
        )
    return dict(out)


def _by_month_version(item) -> tuple:
    (consumer, month, effective_from, _), _ = item
    return str(consumer), month, effective_from
