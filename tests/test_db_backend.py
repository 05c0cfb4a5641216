"""The PostgreSQL backend's health check (config/postgresql/base.py): no round trip
for a quiet idle connection, the server's word for anything else — a connection the
server closed is found unusable, and the next request reconnects.  And the settings'
server-side binding with prepared statements: a statement run five times on a
connection is prepared there at its next run; ``DJANGO_DB_PREPARE_THRESHOLD=off`` turns it off."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection, connections
from psycopg import ClientCursor

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL backend")


@pytest.fixture
def spare():
    """A second connection to the test database, outside the test's transaction."""
    wrapper = connections.create_connection("default")
    wrapper.connect()
    yield wrapper
    wrapper.close()


@contextlib.contextmanager
def _counting(wrapper):
    """Count the cursors opened on ``wrapper``'s psycopg connection meanwhile."""
    counting = _Counting(wrapper.connection)
    wrapper.connection = counting
    try:
        yield counting
    finally:
        wrapper.connection = counting._real


class _Counting:
    """Wraps a psycopg connection and counts the cursors opened on it."""

    def __init__(self, real):
        self._real, self.cursors = real, 0

    def cursor(self, *args, **kwargs):
        self.cursors += 1
        return self._real.cursor(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_the_settings_use_the_project_backend():
    assert settings.DATABASES["default"]["ENGINE"] == "config.postgresql"
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True


@pytest.mark.django_db
def test_a_quiet_idle_connection_is_usable_without_a_round_trip(spare):
    with _counting(spare) as counting:
        assert spare.is_usable() is True
    assert counting.cursors == 0


@pytest.mark.django_db
def test_a_connection_in_a_transaction_asks_the_server(spare):
    spare.connection.execute("BEGIN")
    try:
        with _counting(spare) as counting:
            assert spare.is_usable() is True
        assert counting.cursors == 1  # Django's SELECT 1
    finally:
        spare.connection.execute("ROLLBACK")


@pytest.mark.django_db
def test_a_connection_the_server_closed_is_unusable_and_the_next_request_reconnects(spare):
    pid = spare.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
        assert cursor.fetchone()[0] is True
    deadline = time.monotonic() + 5
    while spare.is_usable() and time.monotonic() < deadline:  # the server's FATAL on its way
        time.sleep(0.05)
    assert spare.is_usable() is False

    # What Django does at a request's first query: check, close, reconnect.
    spare.health_check_done = False
    with spare.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        new_pid = cursor.fetchone()[0]
    assert new_pid != pid


@pytest.mark.django_db
def test_without_poll_the_check_asks_the_server(spare, monkeypatch):
    import select

    monkeypatch.delattr(select, "poll")  # as on a platform without it
    with _counting(spare) as counting:
        assert spare.is_usable() is True
    assert counting.cursors == 1


# ---------------------------------------------------------------------------
# Server-side binding and prepared statements (DJANGO_DB_PREPARE_THRESHOLD)
# ---------------------------------------------------------------------------
def plans(wrapper) -> dict[str, tuple[int, int]]:
    """The statements prepared on ``wrapper``'s connection (PostgreSQL's own view):
    statement -> (generic plans, custom plans) made for it."""
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
        return {statement: (generic, custom) for statement, generic, custom in cursor.fetchall()}


def test_the_settings_bind_parameters_on_the_server_and_prepare_statements():
    options = settings.DATABASES["default"]["OPTIONS"]
    assert options["server_side_binding"] is True
    assert options["prepare_threshold"] == 5
    assert options["options"] == "-c plan_cache_mode=force_custom_plan"


@pytest.mark.django_db
def test_a_statement_is_prepared_on_its_connection_after_the_threshold(spare):
    # Psycopg's client-side cursor (Django's default) never prepares anything.
    assert not isinstance(spare.connection.cursor(), ClientCursor)
    sql = "SELECT %s::integer + 1 AS tongxin_prepare_probe"
    with spare.cursor() as cursor:
        for n in range(5):  # run five times: counted, not yet prepared
            cursor.execute(sql, [n])
            assert cursor.fetchone() == (n + 1,)
    assert not any("tongxin_prepare_probe" in s for s in plans(spare))
    with spare.cursor() as cursor:
        cursor.execute(sql, [41])  # the sixth run is prepared first, then executed
        assert cursor.fetchone() == (42,)
    prepared = [s for s in plans(spare) if "tongxin_prepare_probe" in s]
    assert prepared == ["SELECT $1::integer + 1 AS tongxin_prepare_probe"]


@pytest.mark.django_db
def test_a_prepared_statement_is_planned_for_each_run_s_values(spare):
    """No generic plan: PostgreSQL would switch to one after five runs, and keep it as a
    table it was made for while small grows (plan_cache_mode=force_custom_plan)."""
    with spare.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone() == ("force_custom_plan",)
        for n in range(16):
            cursor.execute("SELECT %s::integer * 2 AS tongxin_plan_probe", [n])
            assert cursor.fetchone() == (2 * n,)
    made = [made for statement, made in plans(spare).items() if "tongxin_plan_probe" in statement]
    assert made == [(0, 11)]  # runs 6-16 on the prepared statement, each planned


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("off", None),
        ("OFF", None),
        ("none", None),
        (
            "2",
            {"server_side_binding": True, "prepare_threshold": 2, "options": "-c plan_cache_mode=force_custom_plan"},
        ),
    ],
)
def test_the_threshold_comes_from_the_environment(value, expected):
    """``DJANGO_DB_PREPARE_THRESHOLD=off`` (PgBouncer in transaction mode) turns both off."""
    environment = {
        **os.environ,
        "DATABASE_URL": "postgres://tongxin@db.invalid:5432/tongxin",
        "DJANGO_DB_PREPARE_THRESHOLD": value,
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    code = "import json, django; django.setup(); from django.conf import settings; "
    code += "print(json.dumps(settings.DATABASES['default'].get('OPTIONS') or None))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=environment, cwd=settings.BASE_DIR, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == expected
