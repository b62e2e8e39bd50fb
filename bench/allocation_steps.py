"""The allocation steps of a benchmark run: a site's measurements in over HTTP, its month allocated
as the product does it, and a plain SQL baseline of the same proportional split."""

import contextlib
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from bench.allocation_workload import METHOD, batch_body
from bench.steps import Site

BASELINE_TABLE = "bench_allocation_baseline"
SCHEME_CODE = "SITE-SHARING"
ALLOCATION_TABLES = ("transactions_booking", "transactions_ledgerline", "allocation_allocationbooking")


def create_allocation_site(workload, *, actor) -> Site:
    """Tenant, the participants (with their metering points), grid and supplier, an API token. No scheme yet."""
    from balance_groups.services import api_client_create, group_create, tenant_get_or_create

    tenant, _ = tenant_get_or_create(code=f"bench-allocation-{workload.seed}", name="Benchmark tenant-electricity site")
    groups = {}
    for participant in workload.participants:
        groups[participant.code] = group_create(
            tenant=tenant,
            actor=actor,
            code=participant.code,
            name=participant.name,
            kind=participant.kind,
            valid_from=workload.start,
            metering_point=participant.metering_point,
        )
    for code, name in ((workload.surplus_to, "Grid export"), (workload.residual_from, "Supplier")):
        groups[code] = group_create(
            tenant=tenant, actor=actor, code=code, name=name, kind="balance", valid_from=workload.start
        )
    _, token = api_client_create(tenant=tenant, name="bench-allocation", actor=actor)
    return Site(tenant, groups, token, session_cookie=None)


def write_measurement_batches(workload, scratch: Path, batch_size: int) -> list[Path]:
    """The bulk request bodies, one file each, written beforehand so ingest does not pay for them."""
    files = []
    for number, batch in enumerate(workload.batches(batch_size)):
        path = scratch / f"measurements-{number:04d}.json"
        path.write_bytes(batch_body(batch))
        files.append(path)
    return files


def analyze_measurements() -> None:
    """What autovacuum would do after a load this size; not timed."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE allocation_measurement")


@contextlib.contextmanager
def jobs_to_broker():
    """Hand the recomputation a write announces to the queue, as the web process does with a broker,
    even where tasks would run in-process: the bench runs that work itself, timed."""
    from bkm.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        yield
    finally:
        app.conf.task_always_eager = previous


def create_scheme(site: Site, workload, *, actor):
    """The scheme's first version from the month's start: it announces the days holding measurements."""
    from allocation.services import scheme_change

    groups = site.groups
    with jobs_to_broker():
        return scheme_change(
            tenant=site.tenant,
            actor=actor,
            code=SCHEME_CODE,
            name="Shared PV and battery",
            method=METHOD,
            sources=[groups[p.code] for p in workload.sources],
            consumers=[(groups[p.code], share) for p, share in zip(workload.consumers, workload.shares(), strict=True)],
            surplus_to=groups[workload.surplus_to],
            residual_from=groups[workload.residual_from],
            effective_from=workload.start,
        )


def relation_bytes(tables=ALLOCATION_TABLES) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest(%s::text[]) AS t", [list(tables)])
        return int(cursor.fetchone()[0])


def allocate_month(site: Site, workload, url: str) -> dict:
    """``settlement_dirty_process`` for the site's tenant in a fresh process (as a worker runs it):
    every announced day is allocated, then settled. Its peak RSS is that process's own (VmHWM:
    ``getrusage`` would report the bench's, since Linux keeps ``ru_maxrss`` across exec)."""
    from django.db import connection

    before = relation_bytes()
    connection.close()  # the allocation must not wait on a transaction of ours
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        figures = pool.submit(allocate_in_fresh_process, url, site.tenant.pk).result()
    grown = relation_bytes() - before
    bookings, seconds = figures["alloc_bookings"], figures["alloc_seconds"]
    figures["alloc_bookings_per_s"] = round(bookings / seconds, 1) if seconds else None
    figures["alloc_bytes_per_booking"] = round(grown / bookings, 1) if bookings else None
    figures["alloc_quarters"] = workload.quarters
    return figures


def allocate_in_fresh_process(url: str, tenant_id) -> dict:
    """The body of the allocation process (spawned: it starts with nothing of the bench's memory)."""
    from bench.processes import setup_worker_process

    setup_worker_process(url)
    from bench.server import peak_rss_kib
    from settlement.models import DirtyDay
    from settlement.services import settlement_dirty_process
    from transactions.models import Booking, BookingKind

    days = DirtyDay.objects.filter(tenant_id=tenant_id).values("day_start").distinct().count()
    ready_rss = peak_rss_kib(os.getpid())
    started = time.perf_counter()
    runs = settlement_dirty_process(tenant_id=tenant_id)
    seconds = time.perf_counter() - started
    peak_rss = peak_rss_kib(os.getpid())
    bookings = Booking.objects.filter(tenant_id=tenant_id, kind=BookingKind.ALLOCATION).count()
    run = runs[0] if runs else None
    return {
        "alloc_seconds": round(seconds, 2),
        "alloc_bookings": bookings,
        "alloc_days_announced": days,
        "alloc_run_status": run.status if run else None,
        "alloc_run_days": run.days_done if run else 0,
        "alloc_run_bookings_created": run.bookings_created if run else 0,
        "alloc_run_error": run.error if run else "",
        "alloc_process_ready_rss_mib": round(ready_rss / 1024, 1),
        "alloc_peak_rss_mib": round(peak_rss / 1024, 1),
    }


def allocation_sql_baseline(site: Site, workload) -> dict:
    """The proportional split floor(G·c_i/Σc) per quarter-hour, source and consumer, plus what each
    consumer still draws and what each source leaves, in one plain CREATE TABLE AS (no largest
    remainder, no keys, no ledger): the set-based cost of the same arithmetic over the same rows."""
    from django.db import connection

    sources = [str(site.groups[p.code].pk) for p in workload.sources]
    consumers = [str(site.groups[p.code].pk) for p in workload.consumers]
    params = {
        "tenant": site.tenant.pk,
        "start": workload.start,
        "end": workload.end,
        "sources": sources,
        "consumers": consumers,
        "surplus": str(site.groups[workload.surplus_to].pk),
        "residual": str(site.groups[workload.residual_from].pk),
    }
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")
        started = time.perf_counter()
        cursor.execute(
            f"""CREATE TABLE {BASELINE_TABLE} AS
            WITH m AS (
                SELECT group_id, quarter_start, energy_wh FROM allocation_measurement
                WHERE tenant_id = %(tenant)s AND quarter_start >= %(start)s AND quarter_start < %(end)s
            ), generation AS (
                SELECT quarter_start, group_id AS source_id, energy_wh AS g FROM m
                WHERE group_id = ANY(%(sources)s::uuid[])
            ), consumption AS (
                SELECT quarter_start, group_id AS consumer_id, energy_wh AS c FROM m
                WHERE group_id = ANY(%(consumers)s::uuid[])
            ), demand AS (
                SELECT quarter_start, sum(c)::bigint AS total FROM consumption GROUP BY quarter_start
            ), split AS (
                SELECT g.quarter_start, g.source_id, c.consumer_id, c.c,
                       CASE WHEN d.total = 0 THEN 0 ELSE LEAST(g.g, d.total) * c.c / d.total END AS part
                FROM generation g
                JOIN demand d USING (quarter_start)
                JOIN consumption c USING (quarter_start)
            ), local_use AS (
                SELECT quarter_start, consumer_id, min(c) AS c, sum(part)::bigint AS local_wh
                FROM split GROUP BY quarter_start, consumer_id
            )
            SELECT quarter_start, source_id, consumer_id AS destination_id, part AS energy_wh
                FROM split WHERE part > 0
            UNION ALL
            SELECT quarter_start, %(residual)s::uuid, consumer_id, c - local_wh
                FROM local_use WHERE c > local_wh
            UNION ALL
            SELECT g.quarter_start, g.source_id, %(surplus)s::uuid, g.g - LEAST(g.g, d.total)
                FROM generation g JOIN demand d USING (quarter_start) WHERE g.g > d.total""",  # noqa: S608
            params,
        )
        seconds = time.perf_counter() - started
        cursor.execute(f"SELECT count(*) FROM {BASELINE_TABLE}")  # noqa: S608
        rows = cursor.fetchone()[0]
        cursor.execute(f"DROP TABLE {BASELINE_TABLE}")
    return {
        "alloc_sql_baseline_seconds": round(seconds, 3),
        "alloc_sql_baseline_rows": rows,
        "alloc_sql_baseline_rows_per_s": round(rows / seconds, 1),
    }
