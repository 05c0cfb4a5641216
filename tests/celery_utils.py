"""A real Celery worker for tests, on the same broker and database as the test.

Load as a pytest plugin (``pytest -p tests.celery_utils``, which ``make test`` does,
or ``pytest_plugins = ["tests.celery_utils"]`` in ``tests/conftest.py``).  It

- gives SQLite runs a file-based test database (``var/test-tongxin.sqlite3``, with
  pytest-xdist's per-worker suffix) instead of the in-memory default, because a
  second process cannot open another process's memory;
- provides the ``celery_worker`` fixture: a ``celery worker --pool solo`` subprocess
  started once per session, pointed at the test database (``SQLITE_PATH`` or
  ``DATABASE_URL`` with the test database's name) and at the test's broker (Redis
  when ``REDIS_URL`` is set, else kombu's filesystem transport in a temporary folder
  shared with the test process).  Requesting it also requests ``transactional_db``:
  the worker only sees committed rows.

Messages the test process publishes (``task.delay()``, also from code under test) go
to that worker.  The worker consumes the default queue, so run one test session per
Redis database at a time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

T = TypeVar("T")

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def pytest_configure(config: pytest.Config) -> None:
    """Give SQLite a test database file that a worker process can open too."""
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        test = database.setdefault("TEST", {})
        if not test.get("NAME"):
            Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
            # One file per test run, so that two runs on one machine never share it.
            test["NAME"] = str(Path(settings.VAR_DIR) / f"test-tongxin-{os.getpid()}.sqlite3")


@dataclass
class CeleryWorker:
    """A running ``celery worker`` subprocess and its log."""

    process: subprocess.Popen
    hostname: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, probe: Callable[[], T | None], timeout: float = 30.0, what: str = "the worker") -> T:
        """Poll ``probe`` until it returns something truthy; fail with the worker's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = probe()
            if result:
                return result
            if self.process.poll() is not None:
                pytest.fail(f"Celery worker exited with {self.process.returncode}.\n{self.log()}")
            time.sleep(0.1)
        pytest.fail(f"Timed out after {timeout:.0f}s waiting for {what}.\nWorker log:\n{self.log()}")


def _worker_database_env() -> dict[str, str]:
    """Environment that points a worker at the test database (created by now)."""
    from django.db import connection

    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "sqlite":
        if name == ":memory:" or "mode=memory" in name:
            pytest.fail(
                "The SQLite test database is in memory, which a worker process cannot open: "
                "load the tests.celery_utils plugin (make test does)."
            )
        return {"SQLITE_PATH": name}
    url = urlsplit(os.environ["DATABASE_URL"])
    return {"DATABASE_URL": urlunsplit(url._replace(path=f"/{name}"))}


@pytest.fixture(scope="session")
def celery_broker_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Point the test process's Celery app at a broker of its own; yield the worker's env.

    With Redis both processes use ``REDIS_URL``.  Without it, the filesystem transport
    moves to a temporary folder (the worker learns it from ``CELERY_FILESYSTEM_DIR``),
    so a ``make run`` worker on the same checkout never takes the test's messages.
    """
    from config.celery_app import app

    if settings.REDIS_URL:
        yield {}
        return
    folder = tmp_path_factory.mktemp("celery-broker")
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir()
    saved = app.conf.broker_transport_options
    app.conf.broker_transport_options = {
        **saved,
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
    }
    _drop_broker_pools(app)
    try:
        yield {"CELERY_FILESYSTEM_DIR": str(folder)}
    finally:
        app.conf.broker_transport_options = saved
        _drop_broker_pools(app)


def _drop_broker_pools(app) -> None:
    """Forget pooled broker connections so the next publish uses the current options.

    Celery caches them on private attributes (as its own after-fork hook resets them).
    """
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, celery_broker_env, tmp_path_factory) -> Iterator[CeleryWorker]:
    """Start ``celery worker --pool solo`` once per session; stop it before the test DB goes."""
    database_env = _worker_database_env()
    env = {**os.environ, **celery_broker_env, **database_env}
    if not settings.REDIS_URL:
        env.pop("REDIS_URL", None)
    if "SQLITE_PATH" in database_env:
        env.pop("DATABASE_URL", None)
    base_dir = str(settings.BASE_DIR)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [base_dir, env.get("PYTHONPATH")]))
    env["DJANGO_SETTINGS_MODULE"] = os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings")

    workdir = tmp_path_factory.mktemp("celery-worker")
    # The filesystem transport keeps fanout bindings in a folder relative to the
    # working directory unless configured: run the worker where the broker lives.
    cwd = celery_broker_env.get("CELERY_FILESYSTEM_DIR", str(workdir))
    hostname = f"test-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    log_path = workdir / "worker.log"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--pool",
        "solo",
        "--loglevel",
        "info",
        "--hostname",
        hostname,
        "--without-gossip",
        "--without-mingle",
        "--include",
        "config.tasks",
        "--queues",
        "celery,background",  # as the Procfile's worker (settings.CELERY_TASK_ROUTES)
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    worker = CeleryWorker(process=process, hostname=hostname, log_path=log_path)
    try:
        worker.wait_for(lambda: f"{hostname} ready." in worker.log(), timeout=READY_TIMEOUT, what="the worker")
        yield worker
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # warm shutdown: finish the current task
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def celery_worker(transactional_db, celery_worker_process) -> CeleryWorker:
    """The session's real Celery worker; the test's rows are committed so it sees them."""
    return celery_worker_process
