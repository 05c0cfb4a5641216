"""The session engine (``SESSION_ENGINE``): Django's database sessions, whose read —
once per signed-in page, before anything else the page does — is one hand-written
statement instead of the ORM's ``Session.objects.get(...)``, whose compilation cost
several times the round trip (about 1 of 1.2 ms on the benchmark's machine).
Writing, expiry and everything else are Django's."""

from __future__ import annotations

from django.contrib.sessions.backends import db
from django.db import connection
from django.utils import timezone

from campuses.bulk import instance_from_row, per_vendor, quoted_columns, select_list


@per_vendor
def _read_sql() -> tuple[str, list]:
    from django.contrib.sessions.models import Session

    table, column = quoted_columns(Session)
    columns, fields = select_list(Session)
    return f"SELECT {columns} FROM {table} WHERE {column['session_key']} = %s AND {column['expire_date']} > %s", fields


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        """The unexpired session of this key, or None (and no key) — as Django's."""
        if self.session_key is None:
            return None
        sql, fields = _read_sql()
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        return instance_from_row(self.model, fields, row)
