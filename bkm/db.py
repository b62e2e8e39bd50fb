"""Database helpers shared by the apps' migrations and services."""

from django.db import connection, migrations


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
