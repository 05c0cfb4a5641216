"""Project-level Celery tasks: is the worker alive, and can it reach its database?

``heartbeat_task`` runs from the beat schedule every minute.  It proves the whole
chain beat → broker → worker → database works, and leaves its last success where
operators and health checks can read it without asking the broker:

- the cache key ``tongxin:worker-heartbeat`` (ISO time; shared between processes
  when the cache is Redis);
- the file ``var/worker-heartbeat`` (JSON: time, worker hostname and pid, and which
  database the worker is connected to), which works with the embedded local-memory
  cache too.

These tasks live outside any app, so the Celery app imports them through
``CELERY_IMPORTS`` rather than app autodiscovery.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

HEARTBEAT_CACHE_KEY = "tongxin:worker-heartbeat"


def heartbeat_file() -> Path:
    """Where the worker leaves its last heartbeat."""
    return Path(settings.VAR_DIR) / "worker-heartbeat"


@shared_task(name="config.ping")
def ping_task() -> str:
    """Answer "pong": the smallest task that shows a worker consumes the queue."""
    return "pong"


@shared_task(name="config.heartbeat", bind=True)
def heartbeat_task(self) -> str:
    """Record that this worker is alive and reaches its database; return the ISO time.

    The database round trip comes first: a worker that cannot reach the database
    cannot do any real work, so it must not look healthy.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    now = timezone.now().isoformat()
    cache.set(HEARTBEAT_CACHE_KEY, now, timeout=None)
    beat = {
        "time": now,
        "hostname": self.request.hostname,
        "pid": os.getpid(),
        "database": {"vendor": connection.vendor, "name": str(connection.settings_dict["NAME"])},
    }
    path = heartbeat_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a reader never sees half a file.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(beat), encoding="utf-8")
    tmp.replace(path)
    return now
