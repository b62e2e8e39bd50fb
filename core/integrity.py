"""The integrity-check runner behind ``manage.py check_ledger`` (and the tests after every step).

Each app registers its checks in its ``AppConfig.ready`` (the ledger's first, then settlement's),
so the runner knows no app. A check is ``(tenant_ids) -> list[Violation]``: it reads with SQL
aggregates and streams its rows, never holding the ledger in memory. ``tenant_ids`` None means all.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection

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


def ledger_violations(tenant_ids=None) -> list[Violation]:
    violations = []
    for check in _checks:
        violations.extend(check(tenant_ids))
    return violations


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
