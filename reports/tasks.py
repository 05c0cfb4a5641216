"""Celery tasks of the reports app: thin, idempotent, taking ISO dates.

Scheduled by beat (``CELERY_BEAT_SCHEDULE`` in settings); never enqueued from a
request, so nothing on a request path waits for the broker.
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.core.management import call_command
from django.utils import timezone


@shared_task(name="reports.reminders_dispatch", ignore_result=True)
def reminders_dispatch_task(now: str | None = None) -> int:
    """Carry out the reminder steps that are due (every 30 s; safe to run twice)."""
    from reports.reminders import reminders_dispatch

    at = dt.datetime.fromisoformat(now) if now else None
    return len(reminders_dispatch(now=at))


@shared_task(name="reports.rollup_compile_day", ignore_result=True)
def rollup_compile_day_task(date: str | None = None) -> int:
    """Compile the snapshots of one local date (default: today) for every slot code."""
    from reports.rollup import rollup_compile_day

    on = dt.date.fromisoformat(date) if date else timezone.localdate()
    return len(rollup_compile_day(on=on))


@shared_task(name="reports.flush_expired_tokens", ignore_result=True)
def flush_expired_tokens_task() -> None:
    """Drop expired JWT refresh tokens from the blacklist tables (simplejwt)."""
    call_command("flushexpiredtokens")


@shared_task(name="reports.cluster_detect", ignore_result=True)
def cluster_detect_task(now: str | None = None) -> int:
    """Look for clusters of abnormal reports and raise or grow alerts (every 10 min;
    safe to run twice or concurrently)."""
    from reports.alerts import cluster_detect

    at = dt.datetime.fromisoformat(now) if now else None
    return len(cluster_detect(now=at).raised)
