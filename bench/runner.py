"""The benchmark run: set up, ingest over HTTP, settle, read, measure, write ``results.json``.

Run it with ``make bench`` (the full default: 1,000 groups x 31 days) or
``python -m bench --preset quick``. It needs PostgreSQL; its default database is ``bkm_bench``.
"""

import argparse
import datetime as dt
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bkm_bench"
DEFAULT_OUT = BENCH_DIR / "results.json"
DEFAULT_PORT = 8301
BATCH_SIZE = 50_000
READ_REQUESTS = 50
ACTOR = "system:bench"
COPY_TABLE = "bench_copy_baseline"
AGGREGATE_TABLE = "bench_aggregate_baseline"
SETTLE_MODE = (
    "settlement: no Celery worker runs during the bench; the tasks ingestion enqueues are purged and "
    "settlement_run is called once, explicitly, for the whole window (that call is what is timed)"
)


def parse_args(argv=None) -> argparse.Namespace:
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
    reset: bool = False,
    out: str | Path | None = DEFAULT_OUT,
    quiet: bool = False,
) -> dict:
    """Run the whole benchmark against the database Django is configured for; return the results."""
    from django.core.management import call_command
    from django.db import connection

    from bench.results import finalize_results, write_results
    from bench.server import AppServer, database_url, own_peak_rss_mib
    from bench.workload import build_workload

    say = (lambda message: None) if quiet else log
    if connection.vendor != "postgresql":
        raise SystemExit("the benchmark needs PostgreSQL (set DATABASE_URL)")
    began = time.perf_counter()
    prepare_database(reset=reset)
    workload = build_workload(groups=groups, days=days, seed=seed)
    results: dict = {
        "groups": len(workload.groups),
        "days": days,
        "values": workload.value_count,
        "seed": seed,
        "batch_size": batch_size,
        "clients": clients,
        "window": {"start": workload.start.isoformat(), "end": workload.end.isoformat()},
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "notes": [],
    }
    say(f"workload: {len(workload.groups)} groups, {len(workload.rules)} rules, {workload.value_count:,} values")

    started = time.perf_counter()
    site = create_site(workload)
    results["setup_seconds"] = round(time.perf_counter() - started, 2)
    say(f"groups and rules created in {results['setup_seconds']} s")

    with tempfile.TemporaryDirectory(prefix="bkm-bench-") as scratch:
        scratch = Path(scratch)
        started = time.perf_counter()
        batch_files, copy_file = write_inputs(workload, site, scratch, batch_size)
        results["prepare_seconds"] = round(time.perf_counter() - started, 2)
        say(f"{len(batch_files)} request bodies and the COPY input written in {results['prepare_seconds']} s")

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
            purge_queue()
            results.update(reads(server, site, workload, read_requests))
            say(f"reads: balance p50 {results['balance_p50_ms']} ms, dashboard p50 {results['dashboard_p50_ms']} ms")
            results.update(server.peak_rss())
        finally:
            server.stop()
            purge_queue()

    results.update(storage())
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
    results["duration_seconds"] = round(time.perf_counter() - began, 1)
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
            if table.split("_", 1)[0] in ("balance", "transactions", "settlement")
        ]
        tables.append("django_session")
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {COPY_TABLE}, {AGGREGATE_TABLE}")
    if LedgerLine.objects.exists():
        raise SystemExit("the ledger is not empty; run on a fresh bench database or pass --reset")


class Site:
    """What the bench created: tenant, groups by code, the API token and a dashboard session."""

    def __init__(self, tenant, groups: dict, token: str, session_cookie: str):
        self.tenant = tenant
        self.groups = groups
        self.token = token
        self.session_cookie = session_cookie


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
    }


# --- measurements -------------------------------------------------------------------------


def bulk_path(client) -> str:
    """The bulk endpoint's path as the app routes it (API.md names it without a trailing slash)."""
    for path in ("/api/v1/bookings/bulk", "/api/v1/bookings/bulk/"):
        status, _ = client.request("POST", path, b'{"bookings": []}')
        if status != 404:
            return path
    raise RuntimeError("the bulk endpoint POST /api/v1/bookings/bulk is not served")


def ingest(server, site: Site, batch_files: list[Path], *, clients: int, say) -> dict:
    from bench.server import HttpClient

    headers = {"Authorization": f"Token {site.token}"}
    path = bulk_path(HttpClient(server.port, headers))
    totals = {"created": 0, "replaced": 0, "unchanged": 0, "rejected": 0}
    first_rejections: list = []
    failures: list[str] = []
    durations: list[float] = []
    pending = list(enumerate(batch_files))
    lock = threading.Lock()

    def poster():
        client = HttpClient(server.port, headers)
        while True:
            with lock:
                if not pending or failures:
                    return
                number, batch_file = pending.pop(0)
            body = batch_file.read_bytes()
            posted = time.perf_counter()
            status, answer = client.json("POST", path, body)
            elapsed = time.perf_counter() - posted
            with lock:
                durations.append(elapsed)
                if status != 200 or not isinstance(answer, dict):
                    failures.append(f"batch {number}: HTTP {status} {str(answer)[:300]}")
                    return
                for key in ("created", "replaced", "unchanged"):
                    totals[key] += answer.get(key, 0)
                rejected = answer.get("rejected") or []
                totals["rejected"] += len(rejected)
                first_rejections.extend(rejected[: max(0, 5 - len(first_rejections))])
            server.sample_peaks()

    started = time.perf_counter()
    threads = [threading.Thread(target=poster, name=f"poster-{n}") for n in range(max(1, clients))]
    for thread in threads:
        thread.start()
    last_report = time.monotonic()
    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(timeout=1.0)
        server.sample_peaks()
        if time.monotonic() - last_report > 15:
            say(f"  {len(durations)}/{len(batch_files)} batches posted")
            last_report = time.monotonic()
    seconds = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"bulk ingestion failed: {failures[0]}\n{server.log_tail()}")
    values = totals["created"] + totals["replaced"] + totals["unchanged"] + totals["rejected"]
    return {
        "ingest_seconds": round(seconds, 2),
        "ingest_values_per_s": round(values / seconds, 1),
        "ingest_created": totals["created"],
        "ingest_replaced": totals["replaced"],
        "ingest_unchanged": totals["unchanged"],
        "ingest_rejected": totals["rejected"],
        "ingest_rejected_examples": first_rejections,
        "ingest_batches": len(batch_files),
        "ingest_batch_seconds_max": round(max(durations, default=0), 2),
        "ingest_batch_seconds_min": round(min(durations, default=0), 2),
    }


def copy_baseline(copy_file: Path) -> dict:
    """The same rows through a raw psycopg COPY into a bare table with the same columns."""
    from django.db import connection

    connection.ensure_connection()
    raw = connection.connection  # the psycopg 3 connection
    with connection.cursor() as cursor:
        cursor.execute(
            f"""CREATE TABLE {COPY_TABLE} (
                tenant_id bigint NOT NULL, external_id varchar(200), source_id uuid NOT NULL,
                destination_id uuid NOT NULL, start timestamptz NOT NULL, "end" timestamptz NOT NULL,
                energy_wh bigint NOT NULL, status varchar(16) NOT NULL)"""
        )
    started = time.perf_counter()
    with raw.cursor() as cursor, copy_file.open("rb") as source:
        with cursor.copy(f"COPY {COPY_TABLE} FROM STDIN") as copy:
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        if not connection.get_autocommit():
            raw.commit()
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {COPY_TABLE}")  # noqa: S608
        rows = cursor.fetchone()[0]
        cursor.execute(f"DROP TABLE {COPY_TABLE}")
    return {
        "ingest_copy_baseline_rows": rows,
        "ingest_copy_baseline_seconds": round(seconds, 2),
        "ingest_copy_baseline_rows_per_s": round(rows / seconds, 1),
    }


def analyze() -> None:
    """What autovacuum would do after a load this size; not timed."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE transactions_booking")
        cursor.execute("ANALYZE transactions_ledgerline")


def aggregate_baseline(site: Site, workload) -> dict:
    """One plain GROUP BY over the window's lines (inflow, outflow per group and quarter) into a bare table."""
    from django.db import connection

    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(
            """CREATE TABLE bench_aggregate_baseline AS
            SELECT g.group_id, l.quarter_start,
                   sum(CASE WHEN g.inflow THEN l.energy_wh ELSE 0 END) AS inflow_wh,
                   sum(CASE WHEN g.inflow THEN 0 ELSE l.energy_wh END) AS outflow_wh,
                   bool_and(l.is_final) AS is_final
            FROM transactions_ledgerline l
            CROSS JOIN LATERAL (VALUES (l.destination_id, true), (l.source_id, false)) AS g(group_id, inflow)
            WHERE l.tenant_id = %s AND l.quarter_start >= %s AND l.quarter_start < %s
            GROUP BY g.group_id, l.quarter_start""",
            [site.tenant.pk, workload.start, workload.end],
        )
        seconds = time.perf_counter() - started
        cursor.execute(f"SELECT count(*) FROM {AGGREGATE_TABLE}")  # noqa: S608
        rows = cursor.fetchone()[0]
        cursor.execute(f"DROP TABLE {AGGREGATE_TABLE}")
        cursor.execute("SELECT count(*) FROM transactions_ledgerline WHERE tenant_id = %s", [site.tenant.pk])
        lines = cursor.fetchone()[0]
    return {
        "settle_sql_baseline_seconds": round(seconds, 3),
        "settle_sql_baseline_rows": rows,
        "settle_input_lines": lines,
    }


def settle(site: Site, workload, input_lines: int) -> dict:
    """``settlement_run`` once for the whole window, in this process; lines/s counts the input lines."""
    from settlement.services import settlement_run

    started = time.perf_counter()
    run = settlement_run(tenant=site.tenant, start=workload.start, end=workload.end)
    seconds = time.perf_counter() - started
    figures = {}
    for name in ("status", "groups", "lines_read", "bookings_created", "bookings_updated", "bookings_finalized"):
        value = getattr(run, name, None)
        if value is not None:
            figures[f"settle_run_{name}"] = value
    return {"settle_seconds": round(seconds, 3), "settle_lines_per_s": round(input_lines / seconds, 1), **figures}


def _timed_gets(client, path: str, count: int) -> tuple[list[float], int]:
    samples, last_status = [], None
    for _ in range(2):  # warm-up: connections, caches
        client.request("GET", path)
    for _ in range(count):
        started = time.perf_counter()
        last_status, _ = client.request("GET", path)
        samples.append((time.perf_counter() - started) * 1000)
        if last_status != 200:
            break
    return samples, last_status


def reads(server, site: Site, workload, count: int) -> dict:
    from django.conf import settings

    from bench.results import percentile
    from bench.server import HttpClient

    group = next(site.groups[leaf.code] for leaf in workload.leaves if leaf.profile == "load")
    query = f"start={workload.start:%Y-%m-%dT%H:%M:%SZ}&end={workload.end:%Y-%m-%dT%H:%M:%SZ}&resolution=15min"
    api = HttpClient(server.port, {"Authorization": f"Token {site.token}"})
    figures: dict = {"balance_group": group.code, "balance_quarters": workload.quarters}
    balance_path = None
    for candidate in (f"/api/v1/balance-groups/{group.pk}/balance", f"/api/v1/balance-groups/{group.pk}/balance/"):
        status, body = api.json("GET", f"{candidate}?{query}")
        if status == 200:
            balance_path = f"{candidate}?{query}"
            figures["balance_intervals"] = len(body.get("intervals", [])) if isinstance(body, dict) else None
            break
    figures.update(balance_p50_ms=None, balance_p95_ms=None)
    if balance_path is None:
        figures["balance_error"] = f"HTTP {status}: {str(body)[:300]}"
    else:
        samples, status = _timed_gets(api, balance_path, count)
        if status == 200:
            figures.update(
                balance_p50_ms=round(percentile(samples, 50), 1),
                balance_p95_ms=round(percentile(samples, 95), 1),
                balance_requests=len(samples),
            )
    server.sample_peaks()

    figures.update(dashboard_p50_ms=None, dashboard_p95_ms=None)
    page = dashboard_group_path(group, workload)
    figures["dashboard_path"] = page
    if page:
        browser = HttpClient(server.port, {"Cookie": f"{settings.SESSION_COOKIE_NAME}={site.session_cookie}"})
        samples, status = _timed_gets(browser, page, count)
        figures["dashboard_status"] = status
        if status != 200:
            figures["dashboard_error"] = server.log_tail(40)
        if status == 200:
            figures.update(
                dashboard_p50_ms=round(percentile(samples, 50), 1),
                dashboard_p95_ms=round(percentile(samples, 95), 1),
                dashboard_requests=len(samples),
            )
    server.sample_peaks()
    return figures


def dashboard_group_path(group, workload) -> str | None:
    """The dashboard's page of ``group`` for the window's first local day, if the dashboard serves one."""
    from django.urls import NoReverseMatch, reverse

    day = (workload.start + dt.timedelta(hours=12)).date().isoformat()
    for name in ("group_detail", "dashboard:group_detail", "group", "dashboard:group", "group-detail"):
        for kwargs in ({"pk": group.pk}, {"group_id": group.pk}, {"ref": group.pk}, {"code": group.code}):
            try:
                return f"{reverse(name, kwargs=kwargs)}?day={day}"
            except NoReverseMatch:
                continue
    return None


def storage() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_total_relation_size('transactions_ledgerline'), pg_relation_size('transactions_ledgerline'),"
            " (SELECT count(*) FROM transactions_ledgerline)"
        )
        total, heap, lines = cursor.fetchone()
    return {
        "ledger_lines": lines,
        "ledger_bytes": total,
        "ledger_heap_bytes": heap,
        "bytes_per_line": round(total / lines, 1) if lines else None,
    }


def check_ledger() -> str:
    """``manage.py check_ledger`` after the run: 'clean', or what it reported."""
    import io

    from django.core.management import CommandError, call_command, get_commands

    if "check_ledger" not in get_commands():
        return "not available"
    output = io.StringIO()
    try:
        call_command("check_ledger", stdout=output, stderr=output)
    except (CommandError, SystemExit) as error:
        return f"violations: {str(error) or output.getvalue()[-2000:]}"
    return "clean"
