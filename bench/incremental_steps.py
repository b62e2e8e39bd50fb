"""What the periodic run costs after small writes, once the month is settled.

Writes go through the services as with a broker and no worker: they only mark days, and the
settlement tasks they ask for are counted here instead of sent. Then ``settlement_dirty_process``
(the periodic job) is timed in this process, as a worker runs it.

- two bookings a month apart (the first and the last day): days marked, tasks asked for, the run;
- the last quarter-hour of every leaf sent again with 1 Wh more (the gateway's next delivery in a
  provisional day): the write and the periodic run after it;
- a periodic run with nothing written since;
- a one-value write into a day while that day is being settled: how long the write takes.
"""

import contextlib
import datetime as dt
import threading
import time

ACTOR = "system:bench"
QUARTER = dt.timedelta(minutes=15)
LOCK_POLL_SECONDS = 0.005
NEW_BOOKINGS = 4  # the bookings these steps add (the re-sent quarter-hour replaces its values)


@contextlib.contextmanager
def broker_writes():
    """As with a broker and no worker: writes mark days only; the tasks they ask for are counted."""
    from celery import current_app

    from core import jobs

    asked: list[str] = []
    send, eager = jobs.send, current_app.conf.task_always_eager
    jobs.send = lambda name, kwargs: asked.append(name)
    current_app.conf.task_always_eager = False
    try:
        yield asked
    finally:
        jobs.send, current_app.conf.task_always_eager = send, eager


def _marked_days(tenant_id) -> int:
    from settlement.models import DirtyDay

    return DirtyDay.objects.filter(tenant_id=tenant_id).values("day_start").distinct().count()


def _item(external_id: str, source: str, destination: str, start: dt.datetime, energy_wh: int) -> dict:
    return {
        "external_id": external_id,
        "source": source,
        "destination": destination,
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (start + QUARTER).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "energy_wh": energy_wh,
    }


def _write(tenant, items: list[dict]) -> float:
    from transactions.bulk import bookings_bulk_ingest

    started = time.perf_counter()
    result = bookings_bulk_ingest(tenant=tenant, actor=ACTOR, items=items)
    if result.rejected:
        raise RuntimeError(f"the bench's own write was refused: {result.rejected[:3]}")
    return time.perf_counter() - started


def _periodic_run(tenant) -> tuple[float, list]:
    from settlement.services import settlement_dirty_process

    started = time.perf_counter()
    runs = settlement_dirty_process(tenant_id=tenant.pk)
    return time.perf_counter() - started, runs


def _last_quarter_items(workload, extra_wh: int) -> list[dict]:
    """The last quarter-hour of every leaf as the workload sent it, with ``extra_wh`` more."""
    last = workload.quarters - 1
    items = {}
    for item in workload.values():  # the last quarter comes last: keep each leaf's latest
        if item["external_id"].endswith(f"-{last}"):
            items[item["external_id"]] = {**item, "energy_wh": item["energy_wh"] + extra_wh}
    return list(items.values())


def _advisory_lock_held_by_other(pid: int) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> %s LIMIT 1", [pid])
        return cursor.fetchone() is not None


def _write_while_settling(tenant, workload, leaf: str) -> dict:
    """Mark the last day, start its settlement in a thread, write one value into that day meanwhile."""
    from django.db import connection

    last_day = workload.end - dt.timedelta(days=1)
    _write(tenant, [_item("bench-during-a", "GRID-IMPORT", leaf, last_day, 2)])
    connection.ensure_connection()
    own_pid = connection.connection.info.backend_pid
    done: dict = {}

    def settle():
        try:
            done["seconds"], _ = _periodic_run(tenant)
        except Exception as error:  # reported with the figures
            done["error"] = repr(error)
        finally:
            connection.close()

    worker = threading.Thread(target=settle, name="bench-settle")
    worker.start()
    deadline = time.monotonic() + 60
    while worker.is_alive() and not _advisory_lock_held_by_other(own_pid) and time.monotonic() < deadline:
        time.sleep(LOCK_POLL_SECONDS)
    overlapped = worker.is_alive()
    write_seconds = _write(tenant, [_item("bench-during-b", "GRID-IMPORT", leaf, last_day + QUARTER, 3)])
    still_settling = worker.is_alive()
    worker.join()
    if "error" in done:
        raise RuntimeError(f"the settlement beside the write failed: {done['error']}")
    return {
        "write_during_settlement_ms": round(write_seconds * 1000, 1),
        "write_during_settlement_overlapped": overlapped and still_settling,
        "settlement_beside_the_write_seconds": round(done["seconds"], 3),
    }


def incremental(site, workload) -> dict:
    """The figures of the module docstring, for the settled month of ``site``."""
    tenant = site.tenant
    leaf = next(spec.code for spec in workload.groups if spec.kind == "consumer" and spec.level == 3)
    first_day, last_day = workload.start, workload.end - dt.timedelta(days=1)
    figures: dict = {}
    with broker_writes() as asked:
        _periodic_run(tenant)  # whatever the settlement left marked (the days whose windows just ended)

        _write(
            tenant,
            [
                _item("bench-first-day", "GRID-IMPORT", leaf, first_day + 12 * QUARTER, 5),
                _item("bench-last-day", "GRID-IMPORT", leaf, last_day + 12 * QUARTER, 5),
            ],
        )
        figures["two_bookings_days_marked"] = _marked_days(tenant.pk)
        figures["two_bookings_tasks_asked"] = len(asked)
        seconds, runs = _periodic_run(tenant)
        figures["two_bookings_run_seconds"] = round(seconds, 3)

        items = _last_quarter_items(workload, extra_wh=1)
        asked.clear()
        figures["quarter_write_values"] = len(items)
        figures["quarter_write_seconds"] = round(_write(tenant, items), 3)
        figures["quarter_days_marked"] = _marked_days(tenant.pk)
        figures["quarter_tasks_asked"] = len(asked)
        seconds, runs = _periodic_run(tenant)
        figures["periodic_quarter_seconds"] = round(seconds, 3)
        figures["periodic_quarter_lines_read"] = sum(run.lines_read or 0 for run in runs)
        figures["periodic_quarter_bookings_changed"] = sum(
            (run.bookings_created or 0) + (run.bookings_updated or 0) for run in runs
        )

        seconds, runs = _periodic_run(tenant)
        figures["periodic_unchanged_seconds"] = round(seconds, 3)
        figures["periodic_unchanged_runs"] = len(runs)

        figures.update(_write_while_settling(tenant, workload, leaf))
        _periodic_run(tenant)
    return figures
