"""Celery tasks: thin wrappers taking ids, calling the settlement services.

Tasks are idempotent (``acks_late``: a task may be delivered twice or redelivered after a worker
died); every unit of work is one transaction under the lock of its day. The services send them by
name (``settlement.dirty.SETTLE_DIRTY_TASK``, ``settlement.services.RUN_TASK``).
"""

from celery import shared_task

from settlement.services import settlement_dirty_process, settlement_run_execute, settlement_runs_reap


@shared_task(name="settlement.settle_dirty", acks_late=True, ignore_result=True)
def settle_dirty(tenant_id=None) -> int:
    """Settle changed days (and days in which rule windows ended); the periodic job's entry point."""
    return len(settlement_dirty_process(tenant_id=tenant_id))


@shared_task(name="settlement.run", acks_late=True, ignore_result=True)
def settlement_run_task(run_id: str) -> str | None:
    """Execute a queued ``SettlementRun`` (requested through the API or the dashboard)."""
    run = settlement_run_execute(run_id=run_id)
    return run.status if run is not None else None


@shared_task(name="settlement.reap_abandoned", acks_late=True, ignore_result=True)
def reap_abandoned() -> int:
    """Mark runs whose worker stopped as abandoned and retry them (periodic, every minute)."""
    return len(settlement_runs_reap())
