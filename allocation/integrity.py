"""Allocation invariants for ``manage.py check_ledger`` (registered with ``core.integrity``).

For every quarter-hour in which a scheme version has the measurement of every participant:
Σ allocated + surplus = generation per source, Σ allocated + residual = consumption per consumer
(the flows are the ledger lines of the current allocation bookings), and each flow is final exactly
when every measurement of that quarter-hour is. Every allocation booking has one key that matches
its one line. A correction after the close (``allocation.corrections``) books every changed pair
of a closed quarter-hour in an open one: its lines match their bookings (which carry no key), and
the quarter-hour's allocation bookings plus its corrections are the allocation of its latest values.
Days still waiting for recomputation are skipped, as in settlement's checks.
"""

import datetime as dt

from django.db.models import F, Max, Min, Q

from allocation.corrections import allocation_of, booked_flows, corrected_values
from allocation.models import (
    AllocationBooking,
    AllocationScheme,
    Correction,
    CorrectionLine,
    DayFlow,
    DayValue,
    Measurement,
)
from allocation.selectors import as_uuid, day_number, with_participants
from core.db import EPOCH_DAY, bucket_sql, epoch_sql
from core.integrity import MAX_REPORTED, Violation, first_rows, stream, tenant_sql
from core.quarters import QUARTER, local_day_bounds, to_epoch
from settlement.integrity import DirtyDays
from transactions.models import Booking, BookingKind, BookingStatus

PARTICIPANTS = """
    SELECT scheme_id, group_id, 1 AS is_source FROM allocation_schemesource
    UNION ALL SELECT scheme_id, group_id, 0 AS is_source FROM allocation_schemeconsumer
"""

# Quarter-hours a version allocates: every participant measured. all_final: every value final.
COMPLETE = f"""
    SELECT v.id AS scheme_id, v.tenant_id, m.quarter_start,
           MIN(CASE WHEN m.status = 'final' THEN 1 ELSE 0 END) AS all_final
    FROM allocation_allocationscheme v
    JOIN ({PARTICIPANTS}) p ON p.scheme_id = v.id
    JOIN allocation_measurement m ON m.group_id = p.group_id AND m.quarter_start >= v.effective_from
         AND (v.effective_until IS NULL OR m.quarter_start < v.effective_until)
    WHERE 1 = 1 {{tenants}}
    GROUP BY v.id, v.tenant_id, m.quarter_start
    HAVING COUNT(*) = (SELECT COUNT(*) FROM ({PARTICIPANTS}) q WHERE q.scheme_id = v.id)
"""  # noqa: S608 - constant SQL pieces and placeholders only

_FLOW_ENDS = """
    SELECT k.scheme_id, k.quarter_start, k.{end}_id AS group_id, {is_source} AS is_source, 0 AS measured,
           l.energy_wh AS flowed, 1 AS flows, CASE WHEN l.is_final THEN 1 ELSE 0 END AS finals, 0 AS measurements
    FROM allocation_allocationbooking k JOIN transactions_ledgerline l ON l.booking_id = k.booking_id
"""

# Per scheme version, quarter-hour, group and role: what was measured, the sum of its flows (a
# source's outgoing, a consumer's incoming), how many flows and how many of them are final. One
# aggregate over measurements and both ends of every flow, so nothing is matched row by row.
PARTICIPANT_TOTALS = f"""
    SELECT e.scheme_id, e.quarter_start, e.group_id, e.is_source, SUM(e.measured) AS measured,
           SUM(e.flowed) AS flowed, SUM(e.flows) AS flows, SUM(e.finals) AS finals, SUM(e.measurements) AS measurements
    FROM (
        SELECT p.scheme_id, m.quarter_start, p.group_id, p.is_source, m.energy_wh AS measured, 0 AS flowed,
               0 AS flows, 0 AS finals, 1 AS measurements
        FROM ({PARTICIPANTS}) p JOIN allocation_measurement m ON m.group_id = p.group_id
        UNION ALL {_FLOW_ENDS.format(end="source", is_source=1)}
        UNION ALL {_FLOW_ENDS.format(end="destination", is_source=0)}
    ) e
    GROUP BY e.scheme_id, e.quarter_start, e.group_id, e.is_source
"""  # noqa: S608 - constant SQL pieces only

# Per complete quarter and participant: its measurement against the sum of its flows, and how many
# of those flows disagree with the values' finality.
_WRONG_STATUS = "CASE WHEN c.all_final = 1 THEN t.flows - t.finals ELSE t.finals END"
IDENTITIES = f"""
    SELECT c.tenant_id, c.scheme_id, c.quarter_start, t.group_id, t.is_source, t.measured, t.flowed, {_WRONG_STATUS}
    FROM ({COMPLETE}) c
    JOIN ({PARTICIPANT_TOTALS}) t ON t.scheme_id = c.scheme_id AND t.quarter_start = c.quarter_start
    WHERE t.measurements > 0 AND (t.flowed <> t.measured OR {_WRONG_STATUS} > 0)
"""  # noqa: S608 - constant SQL pieces only


def check_allocation_identities(tenant_ids=None) -> list:
    dirty = DirtyDays(tenant_ids)
    tenants, params = tenant_sql("v", tenant_ids)
    violations = []
    for tenant_id, scheme_id, quarter, group_id, is_source, measured, flowed, wrong_status in stream(
        IDENTITIES.format(tenants=tenants), params
    ):
        if dirty.covers(tenant_id, quarter):
            continue
        role = "generation" if is_source else "consumption"
        if int(flowed) != int(measured):
            detail = f"scheme {scheme_id} {quarter}: {role} of {group_id} is {measured} Wh, its allocation {flowed} Wh"
        else:
            detail = (
                f"scheme {scheme_id} {quarter}: {wrong_status} flow(s) of {group_id} disagree with its values' status"
            )
        violations.append(Violation("allocation_identity", detail))
        if len(violations) >= MAX_REPORTED:
            break
    return violations


def check_allocation_keys(tenant_ids=None) -> list:
    """One key per allocation booking, matching its one line: the quarter-hour and the pair."""
    keys = AllocationBooking.objects.all()
    bookings = Booking.objects.filter(kind=BookingKind.ALLOCATION)
    if tenant_ids is not None:
        keys = keys.filter(tenant_id__in=tenant_ids)
        bookings = bookings.filter(tenant_id__in=tenant_ids)
    unkeyed = bookings.filter(allocation_key__isnull=True, reversed_by__isnull=True)
    violations = [
        Violation("allocation_key", f"allocation booking {pk} has no key and is not reversed")
        for (pk,) in first_rows(unkeyed.values_list("pk"))
    ]
    mismatched = keys.exclude(
        Q(booking__kind=BookingKind.ALLOCATION)
        & Q(booking__tenant_id=F("tenant_id"))
        & Q(booking__start=F("quarter_start"))
        & Q(booking__source_id=F("source_id"))
        & Q(booking__destination_id=F("destination_id"))
        & Q(booking__reversed_by__isnull=True)
    ).values_list("booking_id")
    violations += [
        Violation("allocation_key", f"allocation booking {pk} does not match its key")
        for (pk,) in first_rows(mismatched)
    ]
    return violations


def check_measurement_groups(tenant_ids=None) -> list:
    """Every measurement names an existing source or consumer of its own tenant."""
    tenants, params = tenant_sql("m", tenant_ids)
    rows = stream(
        "SELECT m.id, m.group_id FROM allocation_measurement m LEFT JOIN balance_groups_balancegroup g "  # noqa: S608
        "ON g.id = m.group_id AND g.tenant_id = m.tenant_id AND g.kind IN ('source', 'consumer') "
        f"WHERE g.id IS NULL {tenants}",
        params,
    )
    violations = []
    for pk, group_id in rows:
        violations.append(
            Violation("measurement_group", f"measurement {pk} names no source or consumer of its tenant ({group_id})")
        )
        if len(violations) >= MAX_REPORTED:
            break
    return violations


DAY_FLOWS = """
    SELECT k.tenant_id, k.scheme_id, {day}, k.source_id, k.destination_id, SUM(l.energy_wh),
           SUM(CASE WHEN l.is_final THEN 0 ELSE 1 END)
    FROM allocation_allocationbooking k JOIN transactions_ledgerline l ON l.booking_id = k.booking_id
    WHERE 1 = 1 {tenants}
    GROUP BY k.tenant_id, k.scheme_id, {day}, k.source_id, k.destination_id
"""

DAY_VALUES = f"""
    SELECT v.tenant_id, v.id, {{day}}, m.group_id, SUM(m.energy_wh), SUM(CASE WHEN m.status = 'final' THEN 0 ELSE 1 END)
    FROM allocation_allocationscheme v
    JOIN ({PARTICIPANTS}) p ON p.scheme_id = v.id
    JOIN allocation_measurement m ON m.group_id = p.group_id AND m.quarter_start >= v.effective_from
         AND (v.effective_until IS NULL OR m.quarter_start < v.effective_until)
    WHERE 1 = 1 {{tenants}}
    GROUP BY v.tenant_id, v.id, {{day}}, m.group_id
"""  # noqa: S608 - constant SQL pieces only


def _compare_days(name: str, stored: dict, sql: str, params: list, dirty) -> list:
    """Stored day totals ``{(scheme, day number, *pair): (Wh, provisional, tenant)}`` against the
    aggregate ``sql`` yields; a day still waiting for recomputation may differ."""
    violations = []

    def report(tenant_id, day_number, detail):
        day_start = local_day_bounds(EPOCH_DAY + dt.timedelta(days=int(day_number)))[0]
        if not dirty.covers(tenant_id, day_start) and len(violations) < MAX_REPORTED:
            violations.append(Violation(name, f"{day_start:%Y-%m-%d}: {detail}"))

    for tenant_id, scheme_id, day, *rest in stream(sql, params):
        *pair, wh, provisional = rest
        key = (scheme_id, int(day), *pair)
        have = stored.pop(_normal(key), None)
        if have is None or (have[0], have[1]) != (int(wh), int(provisional)):
            report(tenant_id, day, f"{pair} of scheme {scheme_id} sums to {wh} Wh, the day total says {have}")
    for (scheme_id, day, *pair), (wh, provisional, tenant_id) in stored.items():
        if wh or provisional:
            report(tenant_id, day, f"{pair} of scheme {scheme_id}: a day total of {wh} Wh without its entries")
    return violations


def _day_sql(alias: str, rows) -> str | None:
    """The local day number of ``alias.quarter_start`` over the span ``rows`` cover, or None if empty."""
    span = rows.aggregate(lo=Min("quarter_start"), hi=Max("quarter_start"))
    if span["lo"] is None:
        return None
    return bucket_sql(epoch_sql(f"{alias}.quarter_start"), "1d", span["lo"], span["hi"] + QUARTER)[0]


def _normal(key: tuple) -> tuple:
    """A key with its ids as UUIDs and its day as a number."""
    scheme, day, *pair = key
    return (as_uuid(scheme), int(day), *(as_uuid(part) for part in pair))


def check_day_totals(tenant_ids=None) -> list:
    """The engine's day totals (``DayFlow``, ``DayValue``) equal the sums of what they total."""
    dirty = DirtyDays(tenant_ids)
    flows, values = DayFlow.objects.all(), DayValue.objects.all()
    keys, measurements = AllocationBooking.objects.all(), Measurement.objects.all()
    if tenant_ids is not None:
        flows, values = flows.filter(tenant_id__in=tenant_ids), values.filter(tenant_id__in=tenant_ids)
        keys, measurements = keys.filter(tenant_id__in=tenant_ids), measurements.filter(tenant_id__in=tenant_ids)
    violations = []
    stored = {
        _normal((scheme, day_number(day), source, destination)): (wh, provisional, tenant)
        for tenant, scheme, day, source, destination, wh, provisional in flows.values_list(
            "tenant_id", "scheme_id", "day_start", "source_id", "destination_id", "energy_wh", "provisional"
        )
    }
    day = _day_sql("k", keys)
    tenants, params = tenant_sql("k", tenant_ids)
    sql = DAY_FLOWS.format(day=day, tenants=tenants) if day else "SELECT 1 WHERE 1 = 0"
    violations += _compare_days("allocation_day_flow", stored, sql, params if day else [], dirty)
    stored = {
        _normal((scheme, day_number(day_start), group)): (wh, provisional, tenant)
        for tenant, scheme, day_start, group, wh, provisional in values.values_list(
            "tenant_id", "scheme_id", "day_start", "group_id", "energy_wh", "provisional"
        )
    }
    day = _day_sql("m", measurements)
    tenants, params = tenant_sql("v", tenant_ids)
    sql = DAY_VALUES.format(day=day, tenants=tenants) if day else "SELECT 1 WHERE 1 = 0"
    violations += _compare_days("allocation_day_value", stored, sql, params if day else [], dirty)
    return violations


def check_correction_lines(tenant_ids=None) -> list:
    """Each correction line's bookings exist, at the correction's quarter-hour, with its energies;
    every correction booking belongs to a line and has no allocation key."""
    lines = CorrectionLine.objects.select_related("correction", "reversal", "booking")
    corrections = Booking.objects.filter(kind=BookingKind.CORRECTION)
    if tenant_ids is not None:
        lines = lines.filter(correction__tenant_id__in=tenant_ids)
        corrections = corrections.filter(tenant_id__in=tenant_ids)
    violations = []

    def wrong(booking, source, destination, energy, start) -> bool:
        if energy == 0:
            return booking is not None
        return (
            booking is None
            or booking.kind != BookingKind.CORRECTION
            or booking.status != BookingStatus.FINAL
            or (booking.source_id, booking.destination_id, booking.energy_wh) != (source, destination, energy)
            or (booking.start, booking.end) != (start, start + QUARTER)
        )

    for line in lines.iterator():
        start = line.correction.booked_start
        if wrong(line.reversal, line.destination_id, line.source_id, line.old_wh, start) or wrong(
            line.booking, line.source_id, line.destination_id, line.new_wh, start
        ):
            violations.append(Violation("correction_line", f"correction line {line.pk} does not match its bookings"))
            if len(violations) >= MAX_REPORTED:
                return violations
    stray = corrections.exclude(
        pk__in=CorrectionLine.objects.filter(reversal__isnull=False).values("reversal_id")
    ).exclude(pk__in=CorrectionLine.objects.filter(booking__isnull=False).values("booking_id"))
    for pk in stray.values_list("pk", flat=True)[: MAX_REPORTED - len(violations)]:
        violations.append(Violation("correction_line", f"correction booking {pk} belongs to no correction line"))
    keyed = AllocationBooking.objects.filter(booking__kind=BookingKind.CORRECTION)
    for pk in keyed.values_list("booking_id", flat=True)[:MAX_REPORTED]:
        violations.append(Violation("correction_line", f"correction booking {pk} has an allocation key"))
    return violations


def check_corrected_quarters(tenant_ids=None) -> list:
    """Every corrected quarter-hour whose participants all have a value: what it has booked (its
    allocation and the correction lines) is the allocation of its latest values."""
    corrections = Correction.objects.select_related("scheme")
    if tenant_ids is not None:
        corrections = corrections.filter(tenant_id__in=tenant_ids)
    dirty = DirtyDays(tenant_ids)
    violations = []
    for scheme_id, quarter in sorted(set(corrections.values_list("scheme_id", "quarter_start"))):
        version = with_participants(AllocationScheme.objects.filter(pk=scheme_id)).get()
        if dirty.covers(version.tenant_id, quarter):
            continue
        values = corrected_values(version, quarter)
        participants = {p.group_id for p in (*version.sources.all(), *version.consumers.all())}
        if not participants <= set(values):
            continue  # not allocated yet: a late value waiting for another
        if booked_flows(version, quarter) != allocation_of(version, to_epoch(quarter), values):
            violations.append(
                Violation("correction_quarter", f"scheme {scheme_id} {quarter}: the bookings are not its allocation")
            )
            if len(violations) >= MAX_REPORTED:
                break
    return violations


ALLOCATION_CHECKS = [
    check_measurement_groups,
    check_allocation_keys,
    check_allocation_identities,
    check_day_totals,
    check_correction_lines,
    check_corrected_quarters,
]
