"""One unit of work: a local day of one tenant, settled level by level and its imbalances refreshed."""

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Prefetch, Q
from django.utils import timezone

from balance_groups.audit import audit_record
from balance_groups.models import AuditAction, BalanceGroup, Tenant
from core.db import advisory_xact_lock, advisory_xact_lock_wide, is_postgres
from core.quarters import local_date, to_epoch
from settlement.engine import diff, writers
from settlement.engine.imbalances import recompute_imbalances
from settlement.engine.nets import child_nets, levels, wanted_for_level
from settlement.models import DirtyDay, SettlementRule, SettlementTarget

SETTLEMENT_LOCK = 0x424B4D  # "BKM": the advisory lock namespace of in-process writers, keyed by tenant id
DAY_BITS = 24  # a local day's ordinal (about 740,000 today) fits in the low bits of a day's lock key


@dataclass
class UnitStats:
    groups: set = field(default_factory=set)
    lines_read: int = 0
    created: int = 0
    updated: int = 0
    finalized: int = 0
    deleted: int = 0

    def add(self, other: "UnitStats") -> None:
        self.groups |= other.groups
        self.lines_read += other.lines_read
        self.created += other.created
        self.updated += other.updated
        self.finalized += other.finalized
        self.deleted += other.deleted

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.finalized or self.deleted)


UnitStep = Callable[..., UnitStats]

_steps_before: list[UnitStep] = []


def before_settlement(step: UnitStep) -> UnitStep:
    """Register ``step(tenant_id=, u0=, u1=, now=) -> UnitStats``, run in every unit before it is
    settled, in its transaction and under its lock (the allocation of the day's measurements)."""
    if step not in _steps_before:
        _steps_before.append(step)
    return step


def lock_tenant(tenant_id) -> None:
    """Serialise the in-process writers of one tenant (each settles its days in its own transaction)
    until the end of the current transaction."""
    advisory_xact_lock(SETTLEMENT_LOCK, tenant_id)


def lock_day(tenant_id, u0: dt.datetime, *, wait: bool = True) -> bool:
    """Serialise the settlement of one local day of one tenant until the end of the transaction.

    Days share nothing (no rule window crosses a local midnight), so workers settle different days
    of one tenant at once; without ``wait``, False when another transaction settles the day.
    """
    return advisory_xact_lock_wide((int(tenant_id) << DAY_BITS) | local_date(u0).toordinal(), wait=wait)


def apply_level(*, tenant_id, group_ids, wanted, u0, u1, codes: dict, now, stats: UnitStats) -> None:
    """Bring the settlement bookings of ``group_ids`` in the unit to ``wanted`` (see ``diff``)."""
    changes = diff.level_changes(wanted, diff.existing_links(group_ids, u0, u1), to_epoch(now))
    replaced = changes.replaced
    if changes.delete:
        writers.delete_settlement_bookings(changes.delete)
        stats.deleted += len(changes.delete) - replaced
    if changes.finalize:
        writers.finalize_settlement_bookings(changes.finalize, now)
        stats.finalized += len(changes.finalize)
    if changes.create:
        writers.create_settlement_bookings(tenant_id=tenant_id, new=changes.create, codes=codes, now=now)
        replaced_final = sum(1 for new in changes.create if new.replaces and new.final)
        stats.created += len(changes.create) - replaced
        stats.updated += replaced - replaced_final
        stats.finalized += replaced_final


def _load_versions(tenant_id, u0, u1) -> dict:
    versions = (
        SettlementRule.objects.filter(tenant_id=tenant_id, effective_from__lt=u1)
        .filter(Q(effective_until__isnull=True) | Q(effective_until__gt=u0))
        # Targets in the order the rule lists them: a tie in the share split goes to the first.
        .prefetch_related(Prefetch("targets", queryset=SettlementTarget.objects.order_by("id")))
        .order_by("group_id", "effective_from")
    )
    by_group = defaultdict(list)
    for version in versions:
        by_group[version.group_id].append(version)
    return by_group


def settle_unit(
    *,
    tenant_id,
    u0: dt.datetime,
    u1: dt.datetime,
    now: dt.datetime | None = None,
    marked_only: bool = False,
    wait: bool = True,
) -> UnitStats | None:
    """Settle one local day of one tenant and refresh its imbalances, in one transaction.

    ``marked_only``: only if the day is still marked once its lock is held (another worker may have
    settled it meanwhile); an empty ``UnitStats`` otherwise. Without ``wait``: None, and nothing
    done, when another transaction settles the day.
    """
    now = now or timezone.now()
    stats = UnitStats()
    with transaction.atomic():
        if not lock_day(tenant_id, u0, wait=wait):
            return None
        if marked_only and not DirtyDay.objects.filter(tenant_id=tenant_id, day_start=u0).exists():
            return stats
        if is_postgres():
            # The unit's aggregates hash about a day of lines: let them do so in memory.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '64MB'")
        # The marks committed by now are of writes whose lines this unit reads; a mark committed
        # later is not deleted by this statement and keeps the day dirty for the next run.
        DirtyDay.objects.filter(tenant_id=tenant_id, day_start=u0).delete()
        for step in _steps_before:
            stats.add(step(tenant_id=tenant_id, u0=u0, u1=u1, now=now))
        versions_by_group = _load_versions(tenant_id, u0, u1)
        if versions_by_group:
            level_of = levels(versions_by_group)
            codes = dict(BalanceGroup.objects.filter(tenant_id=tenant_id).values_list("pk", "code"))
            for level in sorted(set(level_of.values())):
                group_ids = sorted((g for g, lv in level_of.items() if lv == level), key=str)
                nets = child_nets(tenant_id, group_ids, u0, u1)
                wanted = wanted_for_level(versions_by_group, group_ids, u0, u1, now, nets)
                apply_level(
                    tenant_id=tenant_id,
                    group_ids=group_ids,
                    wanted=wanted,
                    u0=u0,
                    u1=u1,
                    codes=codes,
                    now=now,
                    stats=stats,
                )
        lines_read, groups = recompute_imbalances(tenant_id, u0, u1)
        stats.lines_read += lines_read
        stats.groups |= groups
        if stats.changed:
            audit_record(
                tenant=Tenant(pk=tenant_id),
                actor=writers.SETTLE_ACTOR,
                action=AuditAction.SETTLEMENT_APPLY,
                obj=Tenant(pk=tenant_id),
                data={
                    "start": u0.isoformat(),
                    "end": u1.isoformat(),
                    "created": stats.created,
                    "updated": stats.updated,
                    "finalized": stats.finalized,
                    "deleted": stats.deleted,
                },
            )
    return stats


def settle_units(*, tenant_id, units: Iterable[tuple[dt.datetime, dt.datetime]], now=None, progress=None) -> UnitStats:
    total = UnitStats()
    units = list(units)
    for index, (u0, u1) in enumerate(units, start=1):
        total.add(settle_unit(tenant_id=tenant_id, u0=u0, u1=u1, now=now))
        if progress is not None:
            progress(index, len(units), u0)
    return total
