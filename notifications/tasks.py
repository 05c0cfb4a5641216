"""Celery tasks for notifications: thin, idempotent, driven by beat only.

``deliveries_dispatch_task`` runs every few seconds from the beat schedule and sends
what the outbox holds; a duplicate or overlapping run finds nothing left to claim.
Request code never enqueues these tasks: it writes outbox rows (services.notify).
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from config.tongxin import tongxin_setting
from notifications.services import deliveries_dispatch, notifications_purge


@shared_task(name="notifications.deliveries_dispatch", ignore_result=True)
def deliveries_dispatch_task(now: str | None = None) -> int:
    """Send the due deliveries (``now``: an ISO datetime, for replays and tests)."""
    return deliveries_dispatch(
        now=dt.datetime.fromisoformat(now) if now else None,
        limit=int(tongxin_setting("NOTIFY_DISPATCH_LIMIT", 500)),
    )


@shared_task(name="notifications.notifications_purge", ignore_result=True)
def notifications_purge_task() -> int:
    """Retention: drop notifications and finished deliveries older than
    ``TONGXIN["NOTIFY_RETENTION_DAYS"]`` (default 365)."""
    days = int(tongxin_setting("NOTIFY_RETENTION_DAYS", 365))
    return notifications_purge(older_than=dt.timedelta(days=days))
