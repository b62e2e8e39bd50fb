"""The measured steps of a benchmark run: ingest, the raw baselines, settlement, reads, storage."""

import datetime as dt
import threading
import time
from pathlib import Path

COPY_TABLE = "bench_copy_baseline"
AGGREGATE_TABLE = "bench_aggregate_baseline"


class Site:
    """What the bench created: tenant, groups by code, the API token and a dashboard session."""

    def __init__(self, tenant, groups: dict, token: str, session_cookie: str):
        self.tenant = tenant
        self.groups = groups
        self.token = token
        self.session_cookie = session_cookie


def bulk_path(client, resource: str = "bookings") -> str:
    """The bulk endpoint's path as the app routes it (API.md names it without a trailing slash)."""
    for path in (f"/api/v1/{resource}/bulk", f"/api/v1/{resource}/bulk/"):
        status, _ = client.request("POST", path, f'{{"{resource}": []}}'.encode())
        if status != 404:
            return path
    raise RuntimeError(f"the bulk endpoint POST /api/v1/{resource}/bulk is not served")


def ingest(
    server, site: Site, batch_files: list[Path], *, clients: int, say, resource: str = "bookings", prefix="ingest"
) -> dict:
    """Post the request bodies to ``/api/v1/{resource}/bulk``; figures named ``{prefix}_...``."""
    from bench.server import HttpClient

    headers = {"Authorization": f"Token {site.token}"}
    path = bulk_path(HttpClient(server.port, headers), resource)
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
    figures = {
        "seconds": round(seconds, 2),
        "values_per_s": round(values / seconds, 1),
        "created": totals["created"],
        "replaced": totals["replaced"],
        "unchanged": totals["unchanged"],
        "rejected": totals["rejected"],
        "rejected_examples": first_rejections,
        "batches": len(batch_files),
        "batch_seconds_max": round(max(durations, default=0), 2),
        "batch_seconds_min": round(min(durations, default=0), 2),
    }
    return {f"{prefix}_{name}": value for name, value in figures.items()}


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
