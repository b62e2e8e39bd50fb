"""Allocating one local day of one tenant: the first step of a settlement unit.

Runs inside ``settlement.engine.units.settle_unit`` (registered by ``AllocationConfig``), in its
transaction and under its day's lock, before the day is settled, so settlement balances the flows
written here. Per scheme version and quarter-hour of the day: the measurements of every participant
are read at once, ``arithmetic.allocate_quarter`` gives the flows, and ``diff`` brings the stored
allocation bookings to them (nothing written when nothing changed).
"""

import datetime as dt

from django.db.models import Prefetch, Q

from allocation.engine import writers
from allocation.engine.arithmetic import allocate_quarter
from allocation.models import AllocationBooking, AllocationScheme, Measurement, SchemeConsumer, SchemeSource
from core.db import EpochSeconds, chunks
from core.quarters import QUARTER_SECONDS, to_epoch
from core.status import Status
from settlement.engine.units import UnitStats

FINAL = Status.FINAL.value


def versions_in(tenant_id, u0: dt.datetime, u1: dt.datetime) -> list[AllocationScheme]:
    """The scheme versions in force at some time of ``[u0, u1)``, participants in their order."""
    return list(
        AllocationScheme.objects.filter(tenant_id=tenant_id, effective_from__lt=u1)
        .filter(Q(effective_until__isnull=True) | Q(effective_until__gt=u0))
        .prefetch_related(
            Prefetch("sources", queryset=SchemeSource.objects.order_by("position")),
            Prefetch("consumers", queryset=SchemeConsumer.objects.order_by("position")),
        )
        .order_by("code", "effective_from")
    )


def measurements_in(group_ids, u0: dt.datetime, u1: dt.datetime) -> dict:
    """``{(group_id, quarter epoch): (energy_wh, is_final)}`` of the groups in ``[u0, u1)``."""
    values = {}
    for chunk in chunks(sorted(group_ids, key=str), 2000):
        rows = (
            Measurement.objects.filter(group_id__in=chunk, quarter_start__gte=u0, quarter_start__lt=u1)
            .annotate(epoch=EpochSeconds("quarter_start"))
            .values_list("group_id", "epoch", "energy_wh", "status")
        )
        for group_id, epoch, energy, status in rows:
            values[(group_id, epoch)] = (energy, status == FINAL)
    return values


def version_quarters(version: AllocationScheme, u0: dt.datetime, u1: dt.datetime) -> range:
    start = max(u0, version.effective_from)
    end = u1 if version.effective_until is None else min(u1, version.effective_until)
    return range(to_epoch(start), to_epoch(end), QUARTER_SECONDS)


def wanted_flows(version: AllocationScheme, quarters: range, values: dict, wanted: dict, gaps: set) -> None:
    """Add the version's flows per allocated quarter-hour to ``wanted`` ({key: (Wh, final)}); a
    quarter-hour lacking any participant's measurement goes to ``gaps`` instead."""
    sources = [s.group_id for s in version.sources.all()]
    consumers = [c.group_id for c in version.consumers.all()]
    shares = [c.share for c in version.consumers.all()]
    surplus_to, residual_from, method, scheme_id = (
        version.surplus_to_id,
        version.residual_from_id,
        version.method,
        version.pk,
    )
    participants = sources + consumers
    for epoch in quarters:
        readings = [values.get((group, epoch)) for group in participants]
        if None in readings:
            gaps.add((scheme_id, epoch))
            continue
        final = all(is_final for _, is_final in readings)
        energies = [energy for energy, _ in readings]
        result = allocate_quarter(method, energies[: len(sources)], energies[len(sources) :], shares)
        for source, parts, surplus in zip(sources, result.allocated, result.surplus, strict=True):
            for consumer, part in zip(consumers, parts, strict=True):
                if part:
                    wanted[(scheme_id, epoch, source, consumer)] = (part, final)
            if surplus:
                wanted[(scheme_id, epoch, source, surplus_to)] = (surplus, final)
        for consumer, residual in zip(consumers, result.residual, strict=True):
            if residual:
                wanted[(scheme_id, epoch, residual_from, consumer)] = (residual, final)


def day_values(versions, u0: dt.datetime, u1: dt.datetime, values: dict) -> dict:
    """``{(version, group): (Wh, provisional values)}`` of each participant in the version's quarter-hours."""
    totals = {}
    for version in versions:
        quarters = version_quarters(version, u0, u1)
        for participant in (*version.sources.all(), *version.consumers.all()):
            wh = provisional = 0
            for epoch in quarters:
                reading = values.get((participant.group_id, epoch))
                if reading is not None:
                    wh += reading[0]
                    provisional += not reading[1]
            totals[(version.pk, participant.group_id)] = (wh, provisional)
    return totals


def stored_flows(version_ids, u0: dt.datetime, u1: dt.datetime) -> dict:
    """``{key: (booking_id, Wh, final)}`` of the current allocation bookings of the versions' day."""
    rows = (
        AllocationBooking.objects.filter(scheme_id__in=version_ids, quarter_start__gte=u0, quarter_start__lt=u1)
        .annotate(epoch=EpochSeconds("quarter_start"))
        .values_list(
            "scheme_id", "epoch", "source_id", "destination_id", "booking_id", "booking__energy_wh", "booking__status"
        )
    )
    return {
        (scheme_id, epoch, source, destination): (booking_id, energy, status == FINAL)
        for scheme_id, epoch, source, destination, booking_id, energy, status in rows
    }


def allocate_unit(*, tenant_id, u0: dt.datetime, u1: dt.datetime, now: dt.datetime) -> UnitStats:
    """Bring the allocation bookings of one tenant's day to what its measurements and schemes say."""
    stats = UnitStats()
    versions = versions_in(tenant_id, u0, u1)
    if not versions:
        return stats
    group_ids = {p.group_id for v in versions for p in (*v.sources.all(), *v.consumers.all())}
    values = measurements_in(group_ids, u0, u1)
    wanted: dict = {}
    gaps: set = set()
    for version in versions:
        wanted_flows(version, version_quarters(version, u0, u1), values, wanted, gaps)
    version_ids = [v.pk for v in versions]
    changes = diff(wanted, stored_flows(version_ids, u0, u1), gaps)
    writers.apply(tenant_id=tenant_id, changes=changes, names={v.pk: f"Allocation {v.code}" for v in versions}, now=now)
    if not changes.empty:
        writers.refresh_day_flows(version_ids=version_ids, u0=u0, u1=u1)
    writers.replace_day_values(
        tenant_id=tenant_id, version_ids=version_ids, u0=u0, totals=day_values(versions, u0, u1, values)
    )
    stats.created, stats.updated = changes.created, changes.replaced
    stats.finalized, stats.deleted = len(changes.finalize), changes.deleted
    return stats


class Changes:
    __slots__ = ("create", "created", "delete", "deleted", "dropped", "finalize", "replaced", "reverse")

    def __init__(self):
        self.create: list = []  # (key, Wh, final)
        self.delete: list = []  # provisional booking ids replaced by a new booking
        self.dropped: list = []  # provisional booking ids no flow wants any more
        self.finalize: list = []  # booking ids whose inputs all became final
        self.reverse: list = []  # final booking ids a corrected final measurement contradicts
        self.created = self.replaced = self.deleted = 0  # flows new, changed, gone

    @property
    def empty(self) -> bool:
        return not (self.create or self.delete or self.dropped or self.finalize or self.reverse)


def diff(wanted: dict, stored: dict, gaps: set) -> Changes:
    """What to write so the stored bookings equal ``wanted``. A final booking is never changed: when
    its (final) inputs were corrected, it is reversed and the new flow booked beside it."""
    changes = Changes()
    stored = dict(stored)
    for key, (energy, final) in wanted.items():
        current = stored.pop(key, None)
        if current is not None:
            booking_id, stored_energy, stored_final = current
            if stored_energy == energy:
                if final and not stored_final:
                    changes.finalize.append(booking_id)
                continue
            (changes.reverse if stored_final else changes.delete).append(booking_id)
            changes.replaced += 1
        else:
            changes.created += 1
        changes.create.append((key, energy, final))
    for key, (booking_id, _, stored_final) in stored.items():
        if not stored_final:
            changes.dropped.append(booking_id)
        elif key[:2] not in gaps:
            changes.reverse.append(booking_id)  # the corrected flow is zero
        else:
            continue  # a final booking whose quarter-hour lost an input: kept as it is
        changes.deleted += 1
    return changes
