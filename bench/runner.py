"""The benchmark run: set up, ingest over HTTP, settle, read, allocate, measure, write ``results.json``.

Run it with ``make bench`` (the full default: 1,000 groups x 31 days, and a site of 1 PV, 1 battery
and 200 consumers over 31 days) or ``python -m bench --preset quick``. It needs PostgreSQL; its
default database is ``bkm_bench``.
"""

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.allocation_steps import (
    BASELINE_TABLE,
    allocate_month,
    allocation_sql_baseline,
    analyze_measurements,
    create_allocation_site,
    create_scheme,
    write_measurement_batches,
)
from bench.allocation_workload import METHOD as ALLOC_METHOD
from bench.incremental_steps import incremental
from bench.parallel_steps import parallel_settle
from bench.steps import (
    AGGREGATE_TABLE,
    COPY_TABLE,
    Site,
    aggregate_baseline,
    analyze,
    check_ledger,
    copy_baseline,
    ingest,
    reads,
    settle,
    storage,
)

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bkm_bench"
DEFAULT_OUT = BENCH_DIR / "results.json"
DEFAULT_PORT = 8301
BATCH_SIZE = 50_000
ALLOC_BATCH_SIZE = 100_000  # the most one measurements/bulk request takes
READ_REQUESTS = 50
ACTOR = "system:bench"
SETTLE_MODE = (
    "settlement: no Celery worker runs during the bench; the tasks ingestion enqueues are purged and "
    "settlement_run is called once, explicitly, for the whole window (that call is what is timed)"
)
ALLOC_MODE = (
    "allocation: measurements posted with no scheme yet (ingest alone); then the scheme's first version "
    "from the window's start, and settlement_dirty_process for that tenant in a fresh process (as a worker "
    "runs it; allocation then settlement of every announced day) is what is timed, with that process's peak RSS"
)


def parse_args(argv=None) -> argparse.Namespace:
    from bench.allocation_workload import PRESETS as ALLOCATION_PRESETS
    from bench.workload import PRESETS

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="full", help="groups x days preset")
    parser.add_argument("--groups", type=int, help="number of balance groups (overrides the preset)")
    parser.add_argument("--days", type=int, help="number of days of quarter-hour values (overrides the preset)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="values per bulk request")
    parser.add_argument("--clients", type=int, default=2, help="concurrent bulk posters (one per gunicorn worker)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--read-requests", type=int, default=READ_REQUESTS)
    parser.add_argument("--alloc-consumers", type=int, help="consumers of the allocation site (overrides the preset)")
    parser.add_argument("--alloc-days", type=int, help="days of the allocation site (overrides the preset)")
    parser.add_argument("--alloc-batch-size", type=int, default=ALLOC_BATCH_SIZE, help="measurements per bulk request")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="where to write the results JSON")
    parser.add_argument("--setup", action="store_true", help="create the database if missing and migrate it")
    parser.add_argument(
        "--reset",
        action="store_true",
        help="empty the app's tables first (only in a database whose name contains 'bench')",
    )
    args = parser.parse_args(argv)
    groups, days = PRESETS[args.preset]
    args.groups = args.groups or groups
    args.days = args.days or days
    consumers, alloc_days = ALLOCATION_PRESETS[args.preset]
    args.alloc_consumers = args.alloc_consumers or consumers
    args.alloc_days = args.alloc_days or alloc_days
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bkm.settings")
    if args.setup:
        ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    if args.setup:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
    results = run(
        groups=args.groups,
        days=args.days,
        seed=args.seed,
        batch_size=args.batch_size,
        clients=args.clients,
        port=args.port,
        read_requests=args.read_requests,
        alloc_consumers=args.alloc_consumers,
        alloc_days=args.alloc_days,
        alloc_batch_size=args.alloc_batch_size,
        reset=args.reset,
        out=args.out,
    )
    from bench.results import format_table

    print(format_table(results))
    print(f"\nresults written to {args.out}")
    return 0


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in ``url`` if it does not exist."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        raise SystemExit(f"the benchmark needs PostgreSQL; DATABASE_URL is {parts.scheme}://")
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def log(message: str) -> None:
    print(f"[{dt.datetime.now(dt.UTC):%H:%M:%S}] {message}", flush=True)


def run(
    *,
    groups: int,
    days: int,
    seed: int = 42,
    batch_size: int = BATCH_SIZE,
    clients: int = 2,
    port: int = DEFAULT_PORT,
    read_requests: int = READ_REQUESTS,
    alloc_consumers: int,
    alloc_days: int,
    alloc_batch_size: int = ALLOC_BATCH_SIZE,
    reset: bool = False,
    out: str | Path | None = DEFAULT_OUT,
    quiet: bool = False,
) -> dict:
    """Run the whole benchmark against the database Django is configured for; return the results."""
    from django.core.management import call_command
    from django.db import connection

    from bench.allocation_workload import build_allocation_workload
    from bench.results import finalize_results, write_results
    from bench.server import AppServer, database_url, own_peak_rss_mib
    from bench.workload import build_workload

    say = (lambda message: None) if quiet else log
    if connection.vendor != "postgresql":
        raise SystemExit("the benchmark needs PostgreSQL (set DATABASE_URL)")
    began = time.perf_counter()
    prepare_database(reset=reset)
    workload = build_workload(groups=groups, days=days, seed=seed)
    site_workload = build_allocation_workload(consumers=alloc_consumers, days=alloc_days, seed=seed)
    results: dict = {
        "groups": len(workload.groups),
        "days": days,
        "values": workload.value_count,
        "seed": seed,
        "batch_size": batch_size,
        "clients": clients,
        "window": {"start": workload.start.isoformat(), "end": workload.end.isoformat()},
        "alloc_sources": len(site_workload.sources),
        "alloc_consumers": len(site_workload.consumers),
        "alloc_days": alloc_days,
        "alloc_values": site_workload.value_count,
        "alloc_batch_size": alloc_batch_size,
        "alloc_method": ALLOC_METHOD,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "notes": [],
    }
    say(f"workload: {len(workload.groups)} groups, {len(workload.rules)} rules, {workload.value_count:,} values")

    started = time.perf_counter()
    site = create_site(workload)
    results["setup_seconds"] = round(time.perf_counter() - started, 2)
    say(f"groups and rules created in {results['setup_seconds']} s")
    alloc_site = create_allocation_site(site_workload, actor=ACTOR)
    say(
        f"allocation site: {len(site_workload.sources)} sources, {len(site_workload.consumers)} consumers, "
        f"{site_workload.value_count:,} measurements"
    )

    with tempfile.TemporaryDirectory(prefix="bkm-bench-") as scratch:
        scratch = Path(scratch)
        started = time.perf_counter()
        batch_files, copy_file = write_inputs(workload, site, scratch, batch_size)
        results["prepare_seconds"] = round(time.perf_counter() - started, 2)
        say(f"{len(batch_files)} request bodies and the COPY input written in {results['prepare_seconds']} s")
        measurement_files = write_measurement_batches(site_workload, scratch, alloc_batch_size)

        # The app serves its pages with hashed static names (whitenoise manifest), as in production.
        call_command("collectstatic", interactive=False, verbosity=0)
        env = server_env(database_url(connection.settings_dict))
        server = AppServer(port=port, env=env, workers=2, log_path=scratch / "gunicorn.log")
        connection.close()  # the app must not wait on a transaction of ours
        server.start()
        try:
            purge_queue()
            say(f"gunicorn (2 workers) serving on 127.0.0.1:{port}; ingesting")
            results.update(ingest(server, site, batch_files, clients=clients, say=say))
            purge_queue()
            say(
                f"ingest: {results['ingest_values_per_s']:,.0f} values/s "
                f"({results['ingest_seconds']} s, rejected {results['ingest_rejected']})"
            )
            results.update(copy_baseline(copy_file))
            say(f"raw COPY baseline: {results['ingest_copy_baseline_rows_per_s']:,.0f} rows/s")
            analyze()
            results.update(aggregate_baseline(site, workload))
            say(f"SQL GROUP BY baseline: {results['settle_sql_baseline_seconds']} s")
            results.update(settle(site, workload, results["settle_input_lines"]))
            say(f"settlement: {results['settle_seconds']} s")
            results.update(incremental(site, workload))
            say(
                f"periodic run after one quarter-hour of {results['quarter_write_values']:,} values: "
                f"{results['periodic_quarter_seconds']} s; two bookings a month apart marked "
                f"{results['two_bookings_days_marked']} day(s); a write beside a settlement took "
                f"{results['write_during_settlement_ms']} ms"
            )
            results.update(parallel_settle(site, workload, database_url(connection.settings_dict)))
            say(
                f"{results['parallel_days']} days settled by 1 / 2 workers: {results['parallel_1_worker_seconds']} / "
                f"{results['parallel_2_worker_seconds']} s (speed-up {results['parallel_speedup']})"
            )
            purge_queue()
            results.update(reads(server, site, workload, read_requests))
            say(f"reads: balance p50 {results['balance_p50_ms']} ms, dashboard p50 {results['dashboard_p50_ms']} ms")
            results.update(storage())  # the ledger of the bookings above, before allocation adds to it
            say(f"ingesting {site_workload.value_count:,} measurements of the allocation site (no scheme yet)")
            results.update(
                ingest(
                    server,
                    alloc_site,
                    measurement_files,
                    clients=clients,
                    say=say,
                    resource="measurements",
                    prefix="alloc_ingest",
                )
            )
            purge_queue()
            say(
                f"measurement ingest: {results['alloc_ingest_values_per_s']:,.0f} values/s "
                f"({results['alloc_ingest_seconds']} s, rejected {results['alloc_ingest_rejected']})"
            )
            results.update(server.peak_rss())
        finally:
            server.stop()
            purge_queue()

    analyze_measurements()
    create_scheme(alloc_site, site_workload, actor=ACTOR)
    purge_queue()
    results.update(allocation_sql_baseline(alloc_site, site_workload))
    say(f"SQL split baseline: {results['alloc_sql_baseline_rows']:,} rows in {results['alloc_sql_baseline_seconds']} s")
    say("allocating the month (settlement_dirty_process in a fresh process)")
    results.update(allocate_month(alloc_site, site_workload, database_url(connection.settings_dict)))
    say(
        f"allocation: {results['alloc_bookings']:,} bookings in {results['alloc_seconds']} s "
        f"({results['alloc_bookings_per_s']:,.0f}/s), peak RSS {results['alloc_peak_rss_mib']} MiB"
    )

    say(f"{results['ledger_lines']:,} ledger lines, {results['bytes_per_line']} bytes per line; running check_ledger")
    started = time.perf_counter()
    results["check_ledger"] = check_ledger()
    results["check_ledger_seconds"] = round(time.perf_counter() - started, 1)
    say(f"check_ledger: {results['check_ledger']} ({results['check_ledger_seconds']} s)")
    results["bench_peak_rss_mib"] = own_peak_rss_mib()
    results["peak_rss_mib"] = max(results.get("app_peak_rss_mib") or 0, results["bench_peak_rss_mib"])
    results["notes"].append(SETTLE_MODE)
    results["notes"].append(
        f"ingest: {clients} concurrent poster(s), {batch_size:,} values per request, bodies written beforehand; "
        "the COPY baseline loads the same rows (tenant, external_id, source, destination, start, end, energy_wh, "
        "status) into a bare table without indexes or constraints"
    )
    results["notes"].append(
        "ANALYZE of the ledger tables after ingest (not timed); the GROUP BY baseline aggregates the ingested "
        "lines (inflow, outflow, status per group and quarter-hour) into a bare table before the settlement runs"
    )
    results["notes"].append(
        "peak_rss_mib is the larger of the app's total (gunicorn master + workers, peak RSS each) "
        "and the bench process (which runs the settlement)"
    )
    results["notes"].append(ALLOC_MODE)
    results["notes"].append(
        "incremental: after the month's settlement, writes through the services as with a broker and no worker "
        "(days only marked; the tasks asked for are counted, not sent), then settlement_dirty_process timed in "
        "this process: two bookings on the first and the last day; the last quarter-hour of every leaf re-sent "
        "with 1 Wh more; a run with nothing written; one value written into a day while that day is settled"
    )
    results["notes"].append(
        "parallel: the month's last days marked again and settled by settlement_dirty_process (the periodic job) "
        "in fresh processes started together, one and then two; nothing changed, so both recompute the same days"
    )
    results["notes"].append(
        f"measurement ingest: {clients} concurrent poster(s), {alloc_batch_size:,} measurements per request, "
        "groups referenced by metering point; ANALYZE of the measurements afterwards (not timed); the SQL split "
        "baseline computes floor(G*c/sum c) per quarter-hour, source and consumer with residual and surplus rows "
        "into a bare table (no largest remainder, no ledger), before the allocation runs"
    )
    results["duration_seconds"] = round(time.perf_counter() - began, 1)
    results["load_average_end"] = [round(load, 2) for load in os.getloadavg()]
    results = finalize_results(results)
    if out:
        write_results(results, out)
    return results


# --- set-up -------------------------------------------------------------------------------


def prepare_database(*, reset: bool) -> None:
    from django.db import connection

    from transactions.models import LedgerLine

    if reset:
        name = connection.settings_dict["NAME"]
        if "bench" not in name:
            raise SystemExit(f"refusing to empty database {name!r}: --reset only works on a bench database")
        tables = [
            table
            for table in connection.introspection.django_table_names(only_existing=True, include_views=False)
            if table.split("_", 1)[0] in ("balance", "transactions", "settlement", "allocation")
        ]
        tables.append("django_session")
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {COPY_TABLE}, {AGGREGATE_TABLE}, {BASELINE_TABLE}")
    if LedgerLine.objects.exists():
        raise SystemExit("the ledger is not empty; run on a fresh bench database or pass --reset")


def create_site(workload) -> Site:
    """Tenant, groups and rules through the services (as the API would create them), a token, a login."""
    from django.conf import settings
    from django.test import Client

    from balance_groups.models import User
    from balance_groups.services import api_client_create, group_create, tenant_get_or_create
    from settlement.services import rule_change

    tenant, _ = tenant_get_or_create(code=f"bench-{workload.seed}", name="Benchmark site")
    groups = {}
    for spec in workload.groups:
        groups[spec.code] = group_create(
            tenant=tenant, actor=ACTOR, code=spec.code, name=spec.name, kind=spec.kind, valid_from=workload.start
        )
    for rule in workload.rules:
        rule_change(
            group=groups[rule.group],
            actor=ACTOR,
            targets=[(groups[parent], share) for parent, share in rule.targets],
            interval=rule.interval,
            effective_from=workload.start,
        )
    _, token = api_client_create(tenant=tenant, name="bench", actor=ACTOR)
    user = User.objects.create_user(username=f"bench-operator-{workload.seed}", tenant=tenant)
    browser = Client()
    browser.force_login(user)
    return Site(tenant, groups, token, browser.cookies[settings.SESSION_COOKIE_NAME].value)


def write_inputs(workload, site: Site, scratch: Path, batch_size: int) -> tuple[list[Path], Path]:
    """The bulk request bodies (one file each) and the same rows as COPY text, written beforehand
    so neither measurement pays for generating them."""
    from bench.workload import batch_body

    ids = {code: str(group.pk) for code, group in site.groups.items()}
    tenant_id = str(site.tenant.pk)
    batch_files = []
    copy_file = scratch / "copy.tsv"
    with copy_file.open("w") as copy_out:
        for number, batch in enumerate(workload.batches(batch_size)):
            path = scratch / f"batch-{number:04d}.json"
            path.write_bytes(batch_body(batch))
            batch_files.append(path)
            copy_out.writelines(
                f"{tenant_id}\t{item['external_id']}\t{ids[item['source']]}\t{ids[item['destination']]}\t"
                f"{item['start']}\t{item['end']}\t{item['energy_wh']}\t{item['status']}\n"
                for item in batch
            )
    return batch_files, copy_file


def server_env(url: str) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "bkm.settings",
            "DJANGO_DEBUG": "0",
            # The bench measures throughput, not the throttle.
            "BKM_THROTTLE_CLIENT": "1000000/min",
            "BKM_THROTTLE_BULK": "1000000/min",
            "BKM_LOG_LEVEL": "WARNING",
        }
    )
    return env


def purge_queue() -> None:
    """Drop the settlement tasks ingestion enqueued: no worker runs during the bench."""
    from django.conf import settings

    if not settings.REDIS_URL:
        return
    from bkm.celery import app

    try:
        app.control.purge()
    except Exception as error:  # the purge is housekeeping: report and go on
        log(f"could not purge the Celery queue: {error}")


def machine_info() -> dict:
    from django.db import connection

    memory_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    except OSError:
        pass
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        cursor.execute("SHOW shared_buffers")
        shared_buffers = cursor.fetchone()[0]
    return {
        "cores": os.cpu_count(),
        "memory_mib": memory_kib // 1024,
        "postgresql": version,
        "shared_buffers": shared_buffers,
        "python": sys.version.split()[0],
        # Other work on the machine skews every figure: the load when the run began.
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


# --- measurements -------------------------------------------------------------------------
