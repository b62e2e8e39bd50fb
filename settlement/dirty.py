"""Marking ledger windows whose imbalances and settlements must be recomputed.

``mark_changed`` listens to the ledger (``core.ledger``, registered in ``SettlementConfig``)
and runs inside the writing transaction. The local days it touches are recorded in ``DirtyDay``
(an insert, so the mark commits or rolls back with the write, and never waits for a settlement). Then:

- with a broker, the ``settle_dirty`` task is enqueued on commit (never before: the worker must
  see the write);
- in-process (no ``REDIS_URL``, or Celery's ``task_always_eager``), the days are settled right
  away inside the same transaction, so the single-process app and the tests read current
  balances immediately after a write.

``deferred()`` batches many writes (e.g. a seeding script): the days are only marked, and settled
(or enqueued) once when the block ends.
"""

import contextlib
import threading

from core import jobs
from settlement.engine.units import lock_tenant, settle_units
from settlement.engine.windows import units_of
from settlement.models import DirtyDay
from settlement.services import settlement_dirty_process

SETTLE_DIRTY_TASK = "settlement.settle_dirty"  # ``settlement.tasks.settle_dirty``

_local = threading.local()


def mark_changed(*, tenant_id, windows) -> None:
    """Called once per write, in its transaction, with the ``[start, end)`` windows whose lines changed:
    exactly the local days they touch are marked, and one settlement task is enqueued."""
    units = units_of(windows)
    if not units:
        return
    pending = getattr(_local, "pending", None)
    in_process = jobs.in_process()
    if in_process and pending is None:
        # One in-process writer of a tenant at a time: it holds the locks of the days it settles
        # until it commits, so two writers taking them in different orders could deadlock.
        lock_tenant(tenant_id)
    # Plain inserts: no row another transaction holds is touched, so a settlement of the day that
    # runs meanwhile does not make this write wait, and leaves this mark for the next run.
    DirtyDay.objects.bulk_create([DirtyDay(tenant_id=tenant_id, day_start=u0) for u0, _ in units])
    if pending is not None:
        pending.add(tenant_id)
    elif in_process:
        settle_units(tenant_id=tenant_id, units=units)
    else:
        jobs.enqueue_on_commit(SETTLE_DIRTY_TASK, tenant_id=tenant_id)


@contextlib.contextmanager
def deferred():
    """Mark only; settle (in-process) or enqueue (broker) each touched tenant once at the end."""
    if getattr(_local, "pending", None) is not None:
        yield
        return
    _local.pending = set()
    try:
        yield
        tenants = sorted(_local.pending)
    finally:
        _local.pending = None
    for tenant_id in tenants:
        if jobs.in_process():
            settlement_dirty_process(tenant_id=tenant_id)
        else:
            jobs.enqueue_on_commit(SETTLE_DIRTY_TASK, tenant_id=tenant_id)
