"""The integrity-check runner behind ``manage.py check_ledger`` (and the tests after every step).

Each app registers its checks in its ``AppConfig.ready`` (the ledger's first, then settlement's),
so the runner knows no app. A check is ``(tenant_ids) -> list[Violation]``: it reads with SQL
aggregates and streams its rows, never holding the ledger in memory. ``tenant_ids`` None means all.

All checks of one run read one snapshot of the database, so a write committed while they run (a
worker settling a day) cannot make two checks, or two statements of one, disagree.
"""

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.db import connection, transaction

MAX_REPORTED = 50


@dataclass(frozen=True)
class Violation:
    check: str
    detail: str


Check = Callable[..., list[Violation]]

_checks: list[Check] = []


def register_checks(*checks: Check) -> None:
    for check in checks:
        if check not in _checks:
            _checks.append(check)


def registered_checks() -> list[Check]:
    return list(_checks)


@dataclass(frozen=True)
class CheckResult:
    check: Check
    violations: list[Violation]
    seconds: float

    @property
    def label(self) -> str:
        return self.check.__name__.removeprefix("check_")


def ledger_violations(tenant_ids=None) -> list[Violation]:
    return [violation for result in run_checks(tenant_ids) for violation in result.violations]


def run_checks(tenant_ids=None, jobs: int = 1) -> Iterator[CheckResult]:
    """Every registered check against one snapshot, yielded in registration order as each is done.

    On PostgreSQL ``jobs`` > 1 runs that many checks at once, each on its own connection importing
    the snapshot of this one (``pg_export_snapshot``). Inside a caller's transaction, whose writes
    no other connection can see, the checks run one after another in that transaction.
    """
    checks = registered_checks()
    if connection.in_atomic_block:
        yield from (_timed(check, tenant_ids) for check in checks)
        return
    jobs = usable_jobs(jobs)
    with transaction.atomic():
        snapshot = _export_snapshot()
        if jobs == 1:
            yield from (_timed(check, tenant_ids) for check in checks)
            return
        pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="check")
        try:
            futures = [pool.submit(_timed_in_snapshot, check, tenant_ids, snapshot) for check in checks]
            for future in futures:
                yield future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def usable_jobs(requested: int) -> int:
    """How many checks can run at once: one on SQLite and inside a transaction, else ``requested``."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return max(1, requested)


def _timed(check: Check, tenant_ids) -> CheckResult:
    started = time.perf_counter()
    violations = check(tenant_ids)
    return CheckResult(check, violations, time.perf_counter() - started)


def _export_snapshot() -> str | None:
    """Make this transaction a read-only snapshot; on PostgreSQL, its id for other connections."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        return cursor.fetchone()[0]


_SNAPSHOT_ID = re.compile(r"[0-9A-F]+(-[0-9A-F]+)+")


def _timed_in_snapshot(check: Check, tenant_ids, snapshot: str) -> CheckResult:
    if not _SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                # SET takes no bind parameters; the id was matched against its format above.
                cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            return _timed(check, tenant_ids)
    finally:
        connection.close()  # this thread's connection; the pool's threads end with the run


def tenant_sql(alias: str, tenant_ids) -> tuple[str, list]:
    """`` AND alias.tenant_id IN (...)`` and its parameters; nothing for all tenants."""
    if tenant_ids is None:
        return "", []
    tenant_ids = list(tenant_ids)
    if not tenant_ids:
        return " AND 1 = 0", []
    return f" AND {alias}.tenant_id IN ({', '.join(['%s'] * len(tenant_ids))})", tenant_ids


def first_rows(query, params=(), limit: int = MAX_REPORTED) -> list[tuple]:
    """The first ``limit`` rows of a query (SQL, or a ``values_list`` queryset), in no order.

    Planned as if every row were read (a materialised CTE). Under a bare LIMIT PostgreSQL prefers
    walking an index in key order, hoping for an early match; the checks' keys are random UUIDs and
    a clean ledger has no match, so that walk reads whole tables in random order.
    """
    if hasattr(query, "query"):
        query, params = query.order_by().query.sql_with_params()
    limited = f"WITH first_rows AS MATERIALIZED ({query}) SELECT * FROM first_rows LIMIT {int(limit)}"  # noqa: S608
    return list(stream(limited, list(params)))


def stream(sql: str, params: list):
    """The rows of a query, fetched in batches."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(2000):
            yield from rows
