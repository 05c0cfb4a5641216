"""Index operations for migrations on tables of millions of rows.

On PostgreSQL an index is built and dropped ``CONCURRENTLY``, so that an upgrade does
not stop the check-in for the time it takes to read the report table; elsewhere
(SQLite) the plain operation runs.  A migration using them sets ``atomic = False``.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations


class _WherePossible:
    plain: type[migrations.operations.base.Operation]

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return self.plain.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return self.plain.database_backwards(self, app_label, schema_editor, from_state, to_state)


class AddIndexConcurrentlyWherePossible(_WherePossible, AddIndexConcurrently):
    """``CREATE INDEX CONCURRENTLY`` on PostgreSQL, a plain index elsewhere (SQLite)."""

    plain = migrations.AddIndex


class RemoveIndexConcurrentlyWherePossible(_WherePossible, RemoveIndexConcurrently):
    """``DROP INDEX CONCURRENTLY`` on PostgreSQL, a plain drop elsewhere (SQLite)."""

    plain = migrations.RemoveIndex
