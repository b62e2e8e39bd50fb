"""Database helpers shared by the apps' migrations and services: backend checks, guards that only
PostgreSQL enforces, advisory locks, epoch conversion, raw-SQL parameters and the bulk row writer."""

import datetime as dt
import itertools
import os
from collections.abc import Callable

from django.db import connection, migrations
from django.db.models import AutoField, BigIntegerField, Func

from core.quarters import from_epoch, local_day_bounds, offset_segments

EPOCH_DAY = dt.date(1970, 1, 1)


def is_postgres(conn=None) -> bool:
    return (conn or connection).vendor == "postgresql"


class PostgresOnlySQL(migrations.RunSQL):
    """Raw SQL for guarantees Django cannot express; PostgreSQL is where they are enforced.

    On SQLite (the embedded development default) the statements are skipped; the services
    enforce the same rules in Python there.
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def aligned_check_sql(table: str, name: str, *columns: str) -> PostgresOnlySQL:
    """CHECK that timestamp columns fall on quarter-hour boundaries (NULL allowed)."""
    condition = " AND ".join(f"({c} IS NULL OR extract(epoch FROM {c}) % 900 = 0)" for c in columns)
    return PostgresOnlySQL(
        f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" CHECK ({condition});',
        f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}";',
    )


def advisory_xact_lock(namespace: int, key: int) -> None:
    """Serialise work on ``(namespace, key)`` until the current transaction ends (PostgreSQL).

    SQLite serialises writers by itself (one writer at a time), so there is nothing to take there.
    """
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [int(namespace), int(key)])


def advisory_xact_lock_wide(key: int, *, wait: bool = True) -> bool:
    """Take the advisory lock on one 64-bit ``key`` until the transaction ends; without ``wait``,
    only if nobody holds it (False then). True on SQLite, whose writers are serialised anyway.

    PostgreSQL keeps 64-bit keys apart from ``(namespace, key)`` pairs, so these never collide
    with ``advisory_xact_lock``; settlement's days are their only user (``settlement.engine.units``).
    """
    if not is_postgres():
        return True
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [int(key)])  # one of two function names
        taken = cursor.fetchone()[0]
    return taken is not False  # pg_advisory_xact_lock returns void (None)


def epoch_sql(column: str) -> str:
    """SQL for a timestamp column as whole seconds since 1970, on the current backend."""
    if is_postgres():
        return f"CAST(EXTRACT(EPOCH FROM {column}) AS bigint)"
    return f"CAST(strftime('%%s', {column}) AS integer)"


class EpochSeconds(Func):
    """``epoch_sql`` in an ORM query: an instant as integer seconds (cheap to read back in bulk)."""

    output_field = BigIntegerField()

    def as_sql(self, compiler, connection, **extra):
        # The template is formatted once more than raw SQL is, so its "%" doubles again.
        template = epoch_sql("%(expressions)s").replace("%%", "%%%%")
        return super().as_sql(compiler, connection, template=template, **extra)


def sql_values(field, values) -> list:
    """Python values as the backend stores them in ``field``'s column (for raw SQL parameters)."""
    return [field.get_db_prep_value(value, connection) for value in values]


def in_list(name: str, count: int) -> str:
    """``%(name_0)s, %(name_1)s, ...``: an IN list of named parameters both backends understand."""
    return ", ".join(f"%({name}_{index})s" for index in range(count)) or "NULL"


def in_params(name: str, values) -> dict:
    return {f"{name}_{index}": value for index, value in enumerate(values)}


def chunks(items: list, size: int = 5000):
    for index in range(0, len(items), size):
        yield items[index : index + size]


# ---------------------------------------------------------------------------------------------
# Writing many rows: COPY on PostgreSQL (a measured multiple of INSERT's speed), INSERT elsewhere.


class TableRows:
    """Rows of one table given as tuples over ``columns`` (attribute names), written in one go.

    ``columns`` must be every concrete column but an auto id, so a new column fails loudly here
    instead of being left to its default by chance. On PostgreSQL the rows are COPYed (psycopg
    formats them); elsewhere they are inserted with one prepared statement per batch.
    """

    def __init__(self, model, columns: tuple[str, ...]):
        fields = {f.attname: f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, AutoField))}
        if set(fields) != set(columns):
            raise RuntimeError(f"Columns of {model.__name__} are out of date: {sorted(set(fields) ^ set(columns))}")
        self.model = model
        self.columns = columns
        self.fields = [fields[name] for name in columns]
        self.rows: list[tuple] = []
        self.add = self.rows.append

    def write(self) -> None:
        if not self.rows:
            return
        quote = connection.ops.quote_name
        table = quote(self.model._meta.db_table)
        columns = ", ".join(quote(field.column) for field in self.fields)
        # Database errors (a UNIQUE violation from a concurrent writer) arrive as Django's own.
        with connection.wrap_database_errors, connection.cursor() as cursor:
            if is_postgres():
                self._copy(cursor, f"COPY {table} ({columns}) FROM STDIN")
            else:
                # The values exactly as given (``bulk_create`` would overwrite auto_now columns).
                placeholders = ", ".join(["%s"] * len(self.fields))
                prepare = [field.get_db_prep_save for field in self.fields]
                for chunk in chunks(self.rows, 2000):
                    cursor.executemany(
                        f"INSERT INTO {table} ({columns}) VALUES ({placeholders})",  # noqa: S608 - names are quoted
                        [[p(value, connection) for p, value in zip(prepare, row, strict=True)] for row in chunk],
                    )

    def _copy(self, cursor, sql: str) -> None:
        with cursor.copy(sql) as copy:
            write_row = copy.write_row
            for row in self.rows:
                write_row(row)


def uuid4_texts(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs as text, as ``str(uuid.uuid4())`` gives them, from one
    read of the system's random source."""
    random = os.urandom(16 * count)
    texts = []
    for index in range(0, 16 * count, 16):
        value = int.from_bytes(random[index : index + 16]) & _UUID4_CLEAR | _UUID4_SET
        hexa = f"{value:032x}"
        texts.append(f"{hexa[:8]}-{hexa[8:12]}-{hexa[12:16]}-{hexa[16:20]}-{hexa[20:]}")
    return texts


# The version (4) and variant (RFC 4122) bits, as ``uuid.UUID(..., version=4)`` sets them.
_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def bucket_sql(epoch: str, resolution: str, start, end) -> tuple[str, Callable]:
    """SQL giving the integer bucket of an epoch expression, and the bucket start of such an integer.

    ``15min`` and ``1h`` are UTC quarter-hours and hours; ``1d`` is the local day number since 1970,
    the epoch shifted by the site zone's offset in force (a CASE over the window's few changes).
    Both backends divide integers to integers, so one expression serves both.
    """
    if resolution == "15min":
        return f"(({epoch}) / 900)", lambda bucket: from_epoch(bucket * 900)
    if resolution == "1h":
        return f"(({epoch}) / 3600)", lambda bucket: from_epoch(bucket * 3600)
    segments = offset_segments(start, end)
    whens = "".join(
        f" WHEN ({epoch}) < {int(since)} THEN {int(seconds)}"
        for (_, seconds), (since, _) in itertools.pairwise(segments)
    )
    offset = f"CASE{whens} ELSE {int(segments[-1][1])} END" if whens else str(int(segments[0][1]))
    return f"((({epoch}) + {offset}) / 86400)", lambda bucket: local_day_bounds(EPOCH_DAY + dt.timedelta(days=bucket))[
        0
    ]
