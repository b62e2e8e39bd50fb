"""Two workers settling one tenant against one worker: the same days, the same work.

The last ``PARALLEL_DAYS`` days of the settled month are marked dirty again and settled by
``settlement_dirty_process`` (the periodic job, as a worker runs it) in fresh processes: once with
one process, once with two started together. Both passes recompute the same days from the same
ledger (nothing changed, so nothing is written but the marks and the run records), so the
speed-up is the ratio of the two wall-clock times.
"""

import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

PARALLEL_DAYS = 8
START_DELAY_SECONDS = 3.0  # enough for a spawned process to load Django before the common start


def _mark_days(tenant_id, days: list) -> None:
    from settlement.models import DirtyDay

    DirtyDay.objects.bulk_create([DirtyDay(tenant_id=tenant_id, day_start=day) for day in days])


def _settle_in_processes(url: str, tenant_id, workers: int) -> tuple[float, list[dict]]:
    from django.db import connection

    connection.close()  # the workers must not wait on a transaction of ours
    start_at = time.time() + START_DELAY_SECONDS
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(settle_in_fresh_process, url, tenant_id, start_at) for _ in range(workers)]
        reports = [future.result() for future in futures]
    return max(r["finished"] for r in reports) - min(r["started"] for r in reports), reports


def settle_in_fresh_process(url: str, tenant_id, start_at: float) -> dict:
    """One worker: the periodic job for the tenant, started at ``start_at`` (wall clock)."""
    from bench.processes import setup_worker_process

    setup_worker_process(url)
    from django.db import connection

    from settlement.services import settlement_dirty_process

    connection.ensure_connection()
    time.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    runs = settlement_dirty_process(tenant_id=tenant_id)
    finished = time.time()
    return {
        "started": started,
        "finished": finished,
        "lines_read": sum(run.lines_read or 0 for run in runs),
    }


def parallel_settle(site, workload, url: str) -> dict:
    from settlement.engine.windows import unit_bounds

    days = [u0 for u0, _ in unit_bounds(workload.start, workload.end)][-PARALLEL_DAYS:]
    tenant_id = site.tenant.pk
    figures = {"parallel_days": len(days)}
    for workers in (1, 2):
        _mark_days(tenant_id, days)
        seconds, reports = _settle_in_processes(url, tenant_id, workers)
        figures[f"parallel_{workers}_worker_seconds"] = round(seconds, 2)
        figures[f"parallel_{workers}_worker_lines_read"] = [report["lines_read"] for report in reports]
    one, two = figures["parallel_1_worker_seconds"], figures["parallel_2_worker_seconds"]
    figures["parallel_speedup"] = round(one / two, 2) if two else None
    return figures
