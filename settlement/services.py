"""Writes of the settlement app: rule versions, and settlement runs over the engine.

A run settles whole local days (``settlement.engine``) and records what it did in a
``SettlementRun``; without a broker it runs in this process, with one a worker runs it
(``settlement.tasks``), found by task name so that this module never imports the tasks.
"""

import datetime as dt
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from balance_groups.audit import actor_label, audit_record
from balance_groups.models import AuditAction, BalanceGroup, GroupKind, Tenant
from core import jobs
from core.db import is_postgres
from core.errors import InvalidInput
from core.ledger import ledger_changed
from core.quarters import (
    QUARTER,
    boundary_at_or_after,
    local_date,
    local_day_bounds,
    next_quarter_after,
    parse_instant,
    require_aligned,
    require_window,
)
from core.text import instant_text
from settlement.engine.units import UnitStats, settle_unit
from settlement.engine.windows import unit_bounds, unit_of
from settlement.engine.writers import SETTLE_ACTOR
from settlement.models import (
    DirtyDay,
    Imbalance,
    RunStatus,
    RunTrigger,
    SettlementCursor,
    SettlementInterval,
    SettlementRule,
    SettlementRun,
    SettlementTarget,
)

logger = logging.getLogger(__name__)

FULL_SHARE = 10000
RUN_TASK = "settlement.run"  # ``settlement.tasks.settlement_run_task``

Progress = Callable[[int, int, dt.datetime], None]


# ---------------------------------------------------------------------------------------------
# Rule versions


def _validate_targets(group: BalanceGroup, targets) -> list[tuple[BalanceGroup, int]]:
    if not targets:
        raise InvalidInput.for_field("targets", _("At least one target is required."))
    cleaned = []
    seen = set()
    for parent, share in targets:
        if parent.tenant_id != group.tenant_id:
            raise InvalidInput.for_field("targets", _("Target not found."))
        if parent.pk == group.pk:
            raise InvalidInput.for_field("targets", _("A group cannot be settled onto itself."))
        if parent.kind != GroupKind.BALANCE:
            raise InvalidInput.for_field(
                "targets",
                _("Target %(code)s is not a balance; only balances can be targets.") % {"code": parent.code},
            )
        if parent.pk in seen:
            raise InvalidInput.for_field("targets", _("Target %(code)s is named twice.") % {"code": parent.code})
        if isinstance(share, bool) or not isinstance(share, int) or not 0 < share <= FULL_SHARE:
            raise InvalidInput.for_field("targets", _("Each share is a whole number of basis points from 1 to 10000."))
        seen.add(parent.pk)
        cleaned.append((parent, share))
    if sum(share for _, share in cleaned) != FULL_SHARE:
        raise InvalidInput.for_field("targets", _("Shares must sum to 10000 basis points."))
    return cleaned


def _creates_cycle(group: BalanceGroup, parents: list[BalanceGroup], effective_from: dt.datetime) -> bool:
    """Would settling ``group`` onto ``parents`` from ``effective_from`` close a loop?

    Conservative: every edge of a version still in force at or after ``effective_from`` counts.
    """
    edges: dict = {}
    live_targets = SettlementTarget.objects.filter(rule__tenant_id=group.tenant_id).filter(
        Q(rule__effective_until__isnull=True) | Q(rule__effective_until__gt=effective_from)
    )
    for child_id, parent_id in live_targets.exclude(rule__group=group).values_list("rule__group_id", "parent_id"):
        edges.setdefault(child_id, set()).add(parent_id)
    stack = [parent.pk for parent in parents]
    seen = set()
    while stack:
        node = stack.pop()
        if node == group.pk:
            return True
        if node in seen:
            continue
        seen.add(node)
        stack.extend(edges.get(node, ()))
    return False


@transaction.atomic
def rule_change(
    *,
    group: BalanceGroup,
    actor,
    targets: list[tuple[BalanceGroup, int]],
    interval: str = SettlementInterval.QUARTER_HOUR,
    effective_from: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> SettlementRule:
    """Add a rule version. A group's first version may start at its ``valid_from``; every
    later one starts no earlier than the next quarter-hour boundary after now."""
    group = BalanceGroup.objects.select_for_update().get(pk=group.pk)
    if interval not in SettlementInterval.values:
        raise InvalidInput.for_field(
            "interval",
            _("The interval must be one of %(choices)s.") % {"choices": ", ".join(SettlementInterval.values)},
        )
    earliest_change = next_quarter_after(now)
    effective_from = earliest_change if effective_from is None else require_aligned(effective_from, "effective_from")
    cleaned = _validate_targets(group, targets)

    latest = SettlementRule.objects.filter(group=group).order_by("-effective_from").first()
    if latest is None:
        if effective_from < group.valid_from:
            raise InvalidInput.for_field(
                "effective_from",
                _("The first rule may start when the group becomes valid (%(valid_from)s) at the earliest.")
                % {"valid_from": instant_text(group.valid_from)},
            )
    else:
        if effective_from < earliest_change:
            raise InvalidInput.for_field(
                "effective_from",
                _(
                    "A rule change takes effect at the next quarter-hour at the earliest (%(earliest)s); "
                    "rules never change retroactively."
                )
                % {"earliest": instant_text(earliest_change)},
            )
        if effective_from <= latest.effective_from:
            raise InvalidInput.for_field(
                "effective_from",
                _("A version starting %(start)s exists; a new version must start after it.")
                % {"start": instant_text(latest.effective_from)},
            )
    if group.valid_until and effective_from >= group.valid_until:
        raise InvalidInput.for_field(
            "effective_from",
            _("The group is no longer valid at %(effective_from)s.") % {"effective_from": instant_text(effective_from)},
        )
    for parent, _share in cleaned:
        if parent.valid_from > effective_from or (parent.valid_until and parent.valid_until <= effective_from):
            raise InvalidInput.for_field(
                "targets",
                _("Target %(code)s is not valid at %(effective_from)s.")
                % {"code": parent.code, "effective_from": instant_text(effective_from)},
            )
    if _creates_cycle(group, [parent for parent, _ in cleaned], effective_from):
        raise InvalidInput.for_field("targets", _("This rule would create a cycle in the settlement hierarchy."))

    if latest is not None:
        latest.effective_until = effective_from
        latest.save(update_fields=["effective_until"])
    rule = SettlementRule.objects.create(
        tenant_id=group.tenant_id,
        group=group,
        interval=interval,
        effective_from=effective_from,
        takes_effect_at=effective_from if latest is None else boundary_at_or_after(effective_from, latest.interval),
    )
    SettlementTarget.objects.bulk_create(
        [SettlementTarget(rule=rule, parent=parent, share=share) for parent, share in cleaned]
    )
    if latest is None:
        _announce_days_to_settle(group, since=effective_from, now=now or timezone.now())
    audit_record(
        tenant=group.tenant,
        actor=actor,
        action=AuditAction.RULE_CHANGE,
        obj=rule,
        data={
            "group": group.code,
            "interval": interval,
            "effective_from": effective_from.isoformat(),
            "takes_effect_at": rule.takes_effect_at.isoformat(),
            "targets": [{"parent": parent.code, "share": share} for parent, share in cleaned],
        },
    )
    return rule


def _announce_days_to_settle(group: BalanceGroup, *, since: dt.datetime, now: dt.datetime) -> None:
    """A first version that starts in the past (loading history) settles days that hold the group's
    data already: they are announced like a ledger write, so they are settled as promptly."""
    until = min(now, group.valid_until) if group.valid_until else now
    if since >= until:
        return
    quarters = Imbalance.objects.filter(group=group, quarter_start__gte=since, quarter_start__lt=until)
    days = sorted({local_date(quarter) for quarter in quarters.values_list("quarter_start", flat=True).iterator()})
    if days:
        ledger_changed(tenant_id=group.tenant_id, windows=[local_day_bounds(day) for day in days])


# ---------------------------------------------------------------------------------------------
# Runs


ANALYZE_AFTER_ROWS = 10_000
ANALYZED_TABLES = (
    "transactions_ledgerline",
    "transactions_booking",
    "settlement_settlementbooking",
    "settlement_imbalance",
)


def _refresh_statistics(tables=ANALYZED_TABLES) -> None:
    """Let the PostgreSQL planner see tables that grew in bulk since autovacuum last looked
    (a month of lines loaded a minute ago looks empty to it). Runs between units, outside their
    transactions."""
    if is_postgres():
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def _execute(
    run: SettlementRun, units=None, *, progress: Progress | None = None, now=None, marked_only: bool = False
) -> SettlementRun:
    """Run ``units`` (default: the run's whole window); the run ends succeeded or failed with the reason.

    ``marked_only`` (the periodic job): a day another worker is settling is passed over at first and
    taken at the end, once that worker is done, if it is still marked; so workers started for one
    tenant share its days instead of queueing behind each other.
    """
    run.status = RunStatus.RUNNING
    run.started_at = run.heartbeat_at = timezone.now()
    run.finished_at = None
    run.error = ""
    run.days_done = 0
    try:
        units = list(unit_bounds(run.start, run.end) if units is None else units)
    except Exception as error:  # nothing was settled: the run still ends in a recorded state
        return _fail(run, error)
    run.days_total = len(units)
    run.save()
    totals = UnitStats()
    if len(units) > 1:
        _refresh_statistics()  # lines may just have been loaded in bulk
    written_since_analyze = 0
    queue, passed_over, wait = units, [], not marked_only
    try:
        while queue:
            for u0, u1 in queue:
                stats = settle_unit(tenant_id=run.tenant_id, u0=u0, u1=u1, now=now, marked_only=marked_only, wait=wait)
                if stats is None:
                    passed_over.append((u0, u1))
                    continue
                totals.add(stats)
                written_since_analyze += stats.created + stats.updated + stats.deleted
                if written_since_analyze >= ANALYZE_AFTER_ROWS:
                    _refresh_statistics()
                    written_since_analyze = 0
                run.days_done += 1
                run.heartbeat_at = timezone.now()
                _copy_counts(run, totals)
                run.save(update_fields=_COUNT_FIELDS)
                if progress is not None:
                    progress(run.days_done, len(units), u0)
            queue, passed_over, wait = passed_over, [], True
    except BaseException as error:
        _fail(run, error)
        raise
    run.status = RunStatus.SUCCEEDED
    run.finished_at = timezone.now()
    with transaction.atomic():
        run.save()
        audit_record(
            tenant=run.tenant,
            actor=run.requested_by or SETTLE_ACTOR,
            action=AuditAction.SETTLEMENT_RUN,
            obj=run,
            data={
                "start": run.start.isoformat(),
                "end": run.end.isoformat(),
                "groups": run.groups,
                "lines_read": run.lines_read,
                "created": run.bookings_created,
                "updated": run.bookings_updated,
                "finalized": run.bookings_finalized,
                "deleted": run.bookings_deleted,
            },
        )
    return run


def _fail(run: SettlementRun, error: BaseException) -> SettlementRun:
    run.status = RunStatus.FAILED
    run.error = f"{type(error).__name__}: {error}"[:2000]
    run.finished_at = timezone.now()
    run.save()
    logger.error("settlement run %s failed: %s", run.pk, run.error)
    return run


_COUNT_FIELDS = [
    "days_done",
    "heartbeat_at",
    "groups",
    "lines_read",
    "bookings_created",
    "bookings_updated",
    "bookings_finalized",
    "bookings_deleted",
]


def _copy_counts(run: SettlementRun, totals: UnitStats) -> None:
    run.groups = len(totals.groups)
    run.lines_read = totals.lines_read
    run.bookings_created = totals.created
    run.bookings_updated = totals.updated
    run.bookings_finalized = totals.finalized
    run.bookings_deleted = totals.deleted


def settlement_run(
    *,
    tenant,
    start: dt.datetime,
    end: dt.datetime,
    trigger: str = RunTrigger.SERVICE,
    progress: Progress | None = None,
    actor=SETTLE_ACTOR,
    now: dt.datetime | None = None,
) -> SettlementRun:
    """Settle ``[start, end)`` (widened to whole local days) now, in this process.

    Records a ``SettlementRun`` with counts and timing; raises (after recording the failure)
    when a unit fails. Units already done stay done: running again completes the window.
    """
    start, end = require_window(start, end)
    run = SettlementRun.objects.create(
        tenant=tenant, start=start, end=end, trigger=trigger, status=RunStatus.QUEUED, requested_by=actor_label(actor)
    )
    return _execute(run, progress=progress, now=now)


def settlement_run_execute(*, run_id) -> SettlementRun | None:
    """Execute a queued run (the Celery task's body). A run that succeeded already is left alone,
    so a redelivered task has no second effect."""
    run = SettlementRun.objects.select_related("tenant").filter(pk=run_id).first()
    if run is None:
        logger.warning("settlement run %s does not exist", run_id)
        return None
    if run.status in (RunStatus.SUCCEEDED, RunStatus.ABANDONED):
        return run  # done, or carried on by its retry
    return _execute(run)


def settlement_run_request(*, tenant, actor, start, end) -> SettlementRun:
    """Queue a settlement of ``[start, end)``: a Celery task on commit, or (without a broker) run
    in this process right away. Returns the run (final state when run in-process)."""
    start = parse_instant(start, "start")
    end = parse_instant(end, "end")
    start, end = require_window(start, end)
    with transaction.atomic():
        run = SettlementRun.objects.create(
            tenant=tenant,
            start=start,
            end=end,
            trigger=RunTrigger.MANUAL,
            status=RunStatus.QUEUED,
            requested_by=actor_label(actor),
        )
        audit_record(
            tenant=tenant,
            actor=actor,
            action=AuditAction.SETTLEMENT_REQUEST,
            obj=run,
            data={"start": start.isoformat(), "end": end.isoformat()},
        )
        if not jobs.in_process():
            jobs.enqueue_on_commit(RUN_TASK, run_id=str(run.pk))
            return run
    try:
        settlement_run_execute(run_id=run.pk)
    except Exception:  # the failure is recorded on the run, which the caller shows
        logger.warning("in-process settlement run %s failed", run.pk)
    run.refresh_from_db()
    return run


def settlement_runs_reap(*, now: dt.datetime | None = None) -> list[SettlementRun]:
    """Runs whose worker stopped (no sign of life for ``RUN_LEASE_SECONDS``) are marked abandoned and retried.

    A killed worker's task would only be redelivered by the broker after its visibility timeout
    (an hour); this finds the run within minutes. The retry is a new run of the same window; the
    work is idempotent, so what the dead worker wrote is taken as it is.
    """
    now = now or timezone.now()
    retries = []
    with transaction.atomic():
        stale = (
            SettlementRun.objects.select_for_update(skip_locked=True)
            .filter(status=RunStatus.RUNNING, heartbeat_at__lt=now - dt.timedelta(seconds=settings.RUN_LEASE_SECONDS))
            .order_by("created_at")
        )
        for run in stale:
            run.status = RunStatus.ABANDONED
            run.finished_at = now
            run.error = _("No sign of life since %(heartbeat)s: its worker stopped. Retried.") % {
                "heartbeat": instant_text(run.heartbeat_at)
            }
            run.save(update_fields=["status", "finished_at", "error"])
            retry = SettlementRun.objects.create(
                tenant_id=run.tenant_id,
                start=run.start,
                end=run.end,
                trigger=RunTrigger.RETRY,
                status=RunStatus.QUEUED,
                requested_by=run.requested_by,
            )
            logger.warning("settlement run %s abandoned; retried as %s", run.pk, retry.pk)
            retries.append(retry)
            if not jobs.in_process():
                jobs.enqueue_on_commit(RUN_TASK, run_id=str(retry.pk))
    if jobs.in_process():
        retries = [_execute(retry) for retry in retries]
    return retries


def settlement_dirty_process(*, tenant_id=None, now: dt.datetime | None = None) -> list[SettlementRun]:
    """The periodic job: settle every day whose ledger changed, and the days in which rule windows
    ended since the last look. One run per tenant that had work."""
    now = now or timezone.now()
    tenants = Tenant.objects.all() if tenant_id is None else Tenant.objects.filter(pk=tenant_id)
    runs = []
    for tenant in tenants.order_by("pk"):
        _mark_ended_windows(tenant, now)
        days = list(
            DirtyDay.objects.filter(tenant=tenant).order_by("day_start").values_list("day_start", flat=True).distinct()
        )
        if not days:
            continue
        units = [unit_of(day) for day in days]
        run = SettlementRun.objects.create(
            tenant=tenant,
            start=units[0][0],
            end=units[-1][1],
            trigger=RunTrigger.SCHEDULE,
            status=RunStatus.QUEUED,
            requested_by=SETTLE_ACTOR,
        )
        runs.append(_execute(run, units, now=now, marked_only=True))
    return runs


def _mark_ended_windows(tenant, now: dt.datetime) -> None:
    """Mark the days in which rule windows ended since the last look (tenants with rules only).

    Only days that hold settled lines: a window without lines hands nothing on, and lines not yet
    settled have marked their day when they were written. So a run with nothing to do is no run.
    """
    if not SettlementRule.objects.filter(tenant=tenant).exists():
        return
    with transaction.atomic():
        cursor, _ = SettlementCursor.objects.select_for_update().get_or_create(
            tenant=tenant, defaults={"checked_until": now - dt.timedelta(days=1)}
        )
        since = cursor.checked_until
        if since >= now:
            return
        # The window that ended exactly at ``since`` may not have been seen: look one quarter back.
        days = [
            u0
            for u0, u1 in unit_bounds(since - QUARTER, now)
            if Imbalance.objects.filter(tenant=tenant, quarter_start__gte=u0, quarter_start__lt=min(u1, now)).exists()
        ]
        DirtyDay.objects.bulk_create([DirtyDay(tenant=tenant, day_start=day) for day in days])
        cursor.checked_until = now
        cursor.save(update_fields=["checked_until"])
