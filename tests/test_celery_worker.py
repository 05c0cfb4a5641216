"""A real Celery worker process consumes what the test publishes, on the test's database."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from config.celery_app import app
from config.tasks import HEARTBEAT_CACHE_KEY, heartbeat_file, heartbeat_task, ping_task

pytestmark = pytest.mark.celery_worker


def _heartbeat_from(hostname: str) -> dict | None:
    try:
        beat = json.loads(heartbeat_file().read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return beat if beat.get("hostname") == hostname else None


def test_worker_records_heartbeat_on_test_database(celery_worker):
    heartbeat_task.delay()

    beat = celery_worker.wait_for(lambda: _heartbeat_from(celery_worker.hostname), what="the heartbeat")

    assert beat["pid"] == celery_worker.pid
    assert beat["database"] == {"vendor": connection.vendor, "name": str(connection.settings_dict["NAME"])}
    if settings.REDIS_URL:  # the local-memory cache is not shared between processes
        assert cache.get(HEARTBEAT_CACHE_KEY) == beat["time"]


def test_worker_answers_remote_control_ping(celery_worker):
    replies = celery_worker.wait_for(
        lambda: app.control.ping(destination=[celery_worker.hostname], timeout=1.0), what="a ping reply"
    )

    assert replies == [{celery_worker.hostname: {"ok": "pong"}}]


def test_ping_task_answers_pong():
    assert ping_task.apply().get() == "pong"
