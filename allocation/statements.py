"""Monthly statements per consumer (Abrechnungsgrundlage), read from the ledger's allocation bookings.

Nothing here is stored: a statement is summed from the engine's day totals (``DayFlow``,
``DayValue``) of the scheme versions in force, so it can never drift from the ledger. Amounts
come from the prices of each version; a price change mid-month is its own line. Each line is
rounded half-up to cents and the total is the sum of the rounded lines.
"""

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from allocation.models import AllocationScheme, DayFlow, DayValue, Measurement
from allocation.selectors import allocated_quarters, as_uuid, correction_lines, ordered_union, with_participants
from balance_groups.models import BalanceGroup, GroupKind
from core.db import epoch_sql, in_list, in_params, sql_values
from core.errors import InvalidInput
from core.quarters import (
    QUARTER,
    QUARTER_SECONDS,
    buckets,
    from_epoch,
    local_date,
    local_day_bounds,
    local_month_bounds,
    quarter_count,
    require_supported,
    to_epoch,
)
from core.status import Status
from settlement.models import SettlementRule
from settlement.selectors import rules_in_force, stale_days

FINAL, PROVISIONAL = Status.FINAL.value, Status.PROVISIONAL.value

MONTH = re.compile(r"(\d{4})-(\d{2})")


def month_window(month: str) -> tuple[dt.datetime, dt.datetime]:
    """The UTC window of a local calendar month given as ``YYYY-MM``."""
    found = MONTH.fullmatch(str(month or "").strip())
    if not found or not 1 <= int(found[2]) <= 12:
        raise InvalidInput.for_field(
            "month", _("The month must be a calendar month as YYYY-MM, not %(month)s.") % {"month": repr(month)}
        )
    start, end = local_month_bounds(int(found[1]), int(found[2]))
    require_supported(start, "month")
    require_supported(end, "month")
    return start, end


def month_of(instant: dt.datetime) -> str:
    """The ``YYYY-MM`` of the local month holding ``instant``."""
    return f"{local_date(instant):%Y-%m}"


def site_groups(*, top: BalanceGroup, start: dt.datetime, end: dt.datetime) -> list[BalanceGroup]:
    """The top balance and every group settled below it (through any of its rule's parents) at
    some point of ``[start, end)``, by code."""
    instants = {start, end - QUARTER}
    instants.update(
        SettlementRule.objects.filter(tenant_id=top.tenant_id, effective_from__gt=start, effective_from__lt=end)
        .filter(Q(effective_until__isnull=True) | Q(effective_until__gt=start))
        .values_list("effective_from", flat=True)
    )
    children = {}
    for at in instants:
        for rule in rules_in_force(tenant=top.tenant, at=at):
            for target in rule.targets.all():
                children.setdefault(target.parent_id, set()).add(rule.group_id)
    found, todo = {top.pk}, [top.pk]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return list(BalanceGroup.objects.filter(pk__in=found).order_by("code"))


CENT = Decimal("0.01")
TENTH = Decimal("0.1")
LOCAL, RESIDUAL, BASE_FEE = "local", "residual", "base_fee"
PRICE_FIELDS = {
    LOCAL: "price_local_ct_per_kwh",
    RESIDUAL: "price_residual_ct_per_kwh",
    BASE_FEE: "base_fee_eur_per_month",
}
PRICE_UNITS = {LOCAL: "ct/kWh", RESIDUAL: "ct/kWh", BASE_FEE: "EUR/month"}


def euros(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def energy_amount(energy_wh: int, ct_per_kwh: Decimal) -> Decimal:
    """Wh at a price in ct/kWh, in EUR rounded half-up to cents (1 kWh = 1000 Wh, 1 EUR = 100 ct)."""
    return euros(Decimal(energy_wh) * ct_per_kwh / 100000)


def local_share(local_wh: int, consumption_wh: int) -> Decimal:
    if consumption_wh <= 0:
        return Decimal("0.0")
    return (Decimal(local_wh) * 100 / Decimal(consumption_wh)).quantize(TENTH, rounding=ROUND_HALF_UP)


@dataclass
class _Month:
    """What every statement of one month shares: the window, its days, stale days, allocated quarter-hours."""

    month: str
    start: dt.datetime
    end: dt.datetime
    days: list
    stale: list
    ended_by: int  # quarter-hours starting before this epoch are over
    allocated: dict = field(default_factory=dict)  # version id -> epochs at which it allocated

    @classmethod
    def of(cls, *, tenant_id, month: str) -> "_Month":
        start, end = month_window(month)
        stale = stale_days(tenant_id=tenant_id, start=start, end=end)  # read first: see group_balance
        return cls(
            month=month,
            start=start,
            end=end,
            days=list(buckets(start, end, "1d")),
            stale=stale,
            ended_by=to_epoch(timezone.now()) - QUARTER_SECONDS + 1,
        )

    def span(self, version) -> tuple[int, int]:
        lo = max(self.start, version.effective_from)
        hi = self.end if version.effective_until is None else min(self.end, version.effective_until)
        return to_epoch(lo), to_epoch(max(lo, hi))

    def allocated_in(self, version) -> set[int]:
        if version.pk not in self.allocated:
            lo, hi = self.span(version)
            self.allocated[version.pk] = allocated_quarters([(version, lo, hi)]) if lo < hi else set()
        return self.allocated[version.pk]

    def day_of(self, epoch: int) -> int:
        lo, hi = 0, len(self.days) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if to_epoch(self.days[mid][0]) <= epoch:
                lo = mid
            else:
                hi = mid - 1
        return lo


def _versions_of(consumer_ids, start, end) -> list[AllocationScheme]:
    return list(
        with_participants(
            AllocationScheme.objects.filter(consumers__group_id__in=consumer_ids, effective_from__lt=end)
            .filter(Q(effective_until__isnull=True) | Q(effective_until__gt=start))
            .distinct()
        ).order_by("effective_from")
    )


def _provisional_quarters(consumer_ids, version_ids, windows) -> dict:
    """consumer id -> epochs (within the given windows) of a provisional measurement of the consumer
    or a provisional allocation booking to it."""
    found = defaultdict(set)
    field_ = Measurement._meta.get_field("quarter_start")
    group_field = Measurement._meta.get_field("group")
    for lo, hi in windows:
        params = {
            **in_params("c", sql_values(group_field, consumer_ids)),
            **in_params("v", sql_values(AllocationScheme._meta.pk, version_ids)),
            "lo": sql_values(field_, [lo])[0],
            "hi": sql_values(field_, [hi])[0],
        }
        epoch_k, epoch_m = epoch_sql("k.quarter_start"), epoch_sql("m.quarter_start")
        consumers = in_list("c", len(consumer_ids))
        sql = (
            f"SELECT k.destination_id, {epoch_k} FROM allocation_allocationbooking k "  # noqa: S608
            "JOIN transactions_ledgerline l ON l.booking_id = k.booking_id "
            f"WHERE k.scheme_id IN ({in_list('v', len(version_ids))}) AND k.destination_id IN ({consumers}) "
            "AND k.quarter_start >= %(lo)s AND k.quarter_start < %(hi)s AND NOT l.is_final "
            f"UNION SELECT m.group_id, {epoch_m} FROM allocation_measurement m "
            f"WHERE m.group_id IN ({consumers}) AND m.quarter_start >= %(lo)s AND m.quarter_start < %(hi)s "
            "AND m.status <> 'final'"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for group_id, epoch in cursor.fetchall():
                found[as_uuid(group_id)].add(int(epoch))
    return found


def _provisional_days(day_rows) -> list[tuple]:
    """The windows of the days whose sums hold a provisional value, merged where consecutive."""
    windows = []
    for day in sorted({row[0] for row in day_rows if row[-1]}):
        lo, hi = local_day_bounds(local_date(day))
        if windows and windows[-1][1] == lo:
            windows[-1] = (windows[-1][0], hi)
        else:
            windows.append((lo, hi))
    return windows


def _statements(*, consumers: list[BalanceGroup], month: _Month) -> list[dict]:
    """The statements of ``consumers`` for the month, by code; a consumer in no scheme has none."""
    ids = [consumer.pk for consumer in consumers]
    versions = _versions_of(ids, month.start, month.end) if ids else []
    if not versions:
        return []
    corrections = _correction_amount_lines(correction_lines(consumer_ids=ids, start=month.start, end=month.end))
    version_ids = [version.pk for version in versions]
    values = list(
        DayValue.objects.filter(
            scheme_id__in=version_ids, group_id__in=ids, day_start__gte=month.start, day_start__lt=month.end
        ).values_list("day_start", "scheme_id", "group_id", "energy_wh", "provisional")
    )
    flows = list(
        DayFlow.objects.filter(
            scheme_id__in=version_ids, destination_id__in=ids, day_start__gte=month.start, day_start__lt=month.end
        ).values_list("day_start", "scheme_id", "source_id", "destination_id", "energy_wh", "provisional")
    )
    windows = _provisional_days([(row[0], row[-1]) for row in (*values, *flows)])
    provisional = _provisional_quarters(ids, version_ids, windows) if windows else {}
    statements = []
    for consumer in consumers:
        own = [v for v in versions if any(c.group_id == consumer.pk for c in v.consumers.all())]
        if own:
            statements.append(
                _statement(
                    consumer,
                    own,
                    month,
                    values=[row for row in values if row[2] == consumer.pk],
                    flows=[row for row in flows if row[3] == consumer.pk],
                    provisional=provisional.get(consumer.pk, set()),
                    corrections=corrections.get(consumer.pk, []),
                )
            )
    return statements


def _statement(consumer, versions, month: _Month, *, values, flows, provisional, corrections) -> dict:
    by_id = {version.pk: version for version in versions}
    day_index = {to_epoch(lo): i for i, (lo, _) in enumerate(month.days)}
    days = [
        {"date": local_date(lo), "start": lo, "end": hi, "consumption_wh": 0, "local_wh": 0, "residual_wh": 0}
        for lo, hi in month.days
    ]
    day_open = [False] * len(days)
    consumption = defaultdict(int)  # version id -> Wh
    for day, version_id, _group, wh, _open in values:
        consumption[version_id] += wh
        days[day_index[to_epoch(day)]]["consumption_wh"] += wh
    local, residual, per_source = defaultdict(int), defaultdict(int), defaultdict(int)
    for day, version_id, source_id, _consumer, wh, _open in flows:
        version = by_id[version_id]
        is_local = any(p.group_id == source_id for p in version.sources.all())
        (local if is_local else residual)[version_id] += wh
        if is_local:
            per_source[source_id] += wh
        days[day_index[to_epoch(day)]]["local_wh" if is_local else "residual_wh"] += wh

    quarter_hours = missing = 0
    spans = []
    for version in versions:
        lo, hi = month.span(version)
        allocated = month.allocated_in(version)
        spans.append((lo, hi, allocated))
        quarter_hours += (hi - lo) // QUARTER_SECONDS
        for epoch in range(lo, min(hi, month.ended_by), QUARTER_SECONDS):
            if epoch not in allocated:
                missing += 1
                day_open[month.day_of(epoch)] = True
    # A provisional value counts where it was allocated; in a gap it is missing, outside the scheme nothing.
    provisional = {e for e in provisional if any(lo <= e < hi and e in allocated for lo, hi, allocated in spans)}
    for epoch in provisional:
        day_open[month.day_of(epoch)] = True
    for i, (lo, hi) in enumerate(month.days):
        if to_epoch(hi) > month.ended_by or any(d0 < hi and lo < d1 for d0, d1 in month.stale):
            day_open[i] = True
    for day, is_open in zip(days, day_open, strict=True):
        day["status"] = PROVISIONAL if is_open else FINAL

    total = sum(consumption.values())
    local_wh, residual_wh = sum(local.values()), sum(residual.values())
    sources = ordered_union([p.group for p in v.sources.all()] for v in versions)
    lines = _amount_lines(versions, month, local, residual) + list(corrections)
    priced = any(getattr(v, f) is not None for v in versions for f in PRICE_FIELDS.values()) or bool(corrections)
    closed = consumer.closed_until is not None and consumer.closed_until >= month.end
    final = closed and not any(day_open) and total == local_wh + residual_wh
    latest = versions[-1]
    return {
        "consumer": consumer.pk,
        "consumer_code": consumer.code,
        "consumer_name": consumer.name,
        "metering_point": consumer.metering_point,
        "scheme": {"id": latest.pk, "code": latest.code, "name": latest.name},
        "month": month.month,
        "start": month.start,
        "end": month.end,
        "status": FINAL if final else PROVISIONAL,
        "closed": closed,
        "up_to_date": not month.stale,
        "consumption_wh": total,
        "local": [
            {"source": g.pk, "source_code": g.code, "source_name": g.name, "energy_wh": per_source[g.pk]}
            for g in sources
        ],
        "local_wh": local_wh,
        "residual_wh": residual_wh,
        "unallocated_wh": total - local_wh - residual_wh,
        "local_share_percent": local_share(local_wh, total),
        "quarter_hours": quarter_hours,
        "provisional_quarter_hours": len(provisional),
        "missing_quarter_hours": missing,
        "lines": lines,
        "amounts": _amounts(lines) if priced else None,
        "days": days,
    }


def _amount_lines(versions, month: _Month, local: dict, residual: dict) -> list[dict]:
    """One line per kind and stretch of equal price: versions that keep the price share a line."""
    month_quarters = quarter_count(month.start, month.end)
    lines = []
    for kind in (LOCAL, RESIDUAL, BASE_FEE):
        stretches = []  # [price, first epoch, end epoch, Wh or quarter-hours]
        for version in versions:
            price = getattr(version, PRICE_FIELDS[kind])
            lo, hi = month.span(version)
            if price is None or lo >= hi:
                continue
            amount = (
                (hi - lo) // QUARTER_SECONDS if kind == BASE_FEE else (local if kind == LOCAL else residual)[version.pk]
            )
            if stretches and stretches[-1][0] == price and stretches[-1][2] == lo:
                stretches[-1][2] = hi
                stretches[-1][3] += amount
            else:
                stretches.append([price, lo, hi, amount])
        for price, lo, hi, amount in stretches:
            if kind == BASE_FEE:
                value, energy = euros(price * amount / month_quarters), None
            else:
                value, energy = energy_amount(amount, price), amount
            lines.append(
                {
                    "kind": kind,
                    "start": from_epoch(lo),
                    "end": from_epoch(hi),
                    "energy_wh": energy,
                    "price": price,
                    "price_unit": PRICE_UNITS[kind],
                    "amount_eur": value,
                    "corrects": None,
                }
            )
    return lines


CORRECTION_KINDS = {LOCAL: "correction_local", RESIDUAL: "correction_residual"}


def _correction_amount_lines(corrections: dict) -> dict:
    """consumer id -> amount lines of the corrections booked in the month: per corrected month and
    version, the change of local and of residual energy at that version's prices. A version
    without a price for the energy has no amount line, as in its own month."""
    versions = AllocationScheme.objects.in_bulk({entry["scheme"] for found in corrections.values() for entry in found})
    lines = defaultdict(list)
    for consumer_id, found in corrections.items():
        for entry in found:
            version = versions[entry["scheme"]]
            start, end = month_window(entry["corrects"])
            for kind, energy in ((LOCAL, entry["local_wh"]), (RESIDUAL, entry["residual_wh"])):
                price = getattr(version, PRICE_FIELDS[kind])
                if price is None or energy == 0:
                    continue
                lines[consumer_id].append(
                    {
                        "kind": CORRECTION_KINDS[kind],
                        "start": max(start, version.effective_from),
                        "end": end if version.effective_until is None else min(end, version.effective_until),
                        "energy_wh": energy,
                        "price": price,
                        "price_unit": PRICE_UNITS[kind],
                        "amount_eur": energy_amount(energy, price),
                        "corrects": entry["corrects"],
                    }
                )
    return lines


def _amounts(lines: list[dict]) -> dict:
    def total(*kinds) -> Decimal:
        return sum((line["amount_eur"] for line in lines if line["kind"] in kinds), Decimal("0.00"))

    return {
        "local_eur": total(LOCAL),
        "residual_eur": total(RESIDUAL),
        "base_fee_eur": total(BASE_FEE),
        "corrections_eur": total(*CORRECTION_KINDS.values()),
        "total_eur": total(LOCAL, RESIDUAL, BASE_FEE, *CORRECTION_KINDS.values()),
    }


def consumer_statement(*, group: BalanceGroup, month: str) -> dict | None:
    """The statement of one consumer for a local month; None when it takes part in no scheme then."""
    found = _statements(consumers=[group], month=_Month.of(tenant_id=group.tenant_id, month=month))
    return found[0] if found else None


def site_statements(*, tenant, top: BalanceGroup, month: str) -> list[dict]:
    """The statements of every consumer of the site under ``top`` for a local month, by code."""
    window = _Month.of(tenant_id=tenant.pk, month=month)
    consumers = [
        group for group in site_groups(top=top, start=window.start, end=window.end) if group.kind == GroupKind.CONSUMER
    ]
    return _statements(consumers=consumers, month=window)
