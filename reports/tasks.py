"""Celery tasks of the reports app: thin, idempotent, taking ISO dates.

Scheduled by beat (``CELERY_BEAT_SCHEDULE`` in settings) — or, for one reminder step,
handed on by the dispatch task — never enqueued from a request, so nothing on a request
path waits for the broker.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.core.management import call_command
from django.utils import timezone

logger = logging.getLogger(__name__)


@shared_task(name="reports.reminders_dispatch", ignore_result=True)
def reminders_dispatch_task(now: str | None = None) -> int:
    """Carry out the reminder steps that are due (every 30 s; safe to run twice).

    One due step runs here; several — at 06:00 every campus's — each in a task of its
    own (``reports.reminder_step``), so that the worker's processes send the campuses'
    rounds side by side instead of one after the other.  A step whose task cannot be
    enqueued runs here; a step enqueued twice (a busy queue, the next dispatch) is
    claimed once.  A round that reached anyone has its deliveries dispatched as soon as
    it is committed.  Returns the steps run or handed on."""
    from reports.reminders import due_steps, reminders_dispatch

    at = dt.datetime.fromisoformat(now) if now else timezone.now()
    steps = due_steps(now=at)
    here = steps if len(steps) == 1 else [step for step in steps if not _hand_on(step, at)]
    runs = reminders_dispatch(now=at, steps=here)
    if any(run.recipients for run in runs):
        _deliver_soon()
    return len(steps) - len(here) + len(runs)


def _hand_on(step, at: dt.datetime) -> bool:
    """Enqueue ``step`` as a task of its own; False (and it runs in the dispatch) when
    the broker cannot take it."""
    try:
        reminder_step_task.apply_async(kwargs={"step_id": step.pk, "now": at.isoformat()}, expires=600)
    except Exception:
        logger.warning("reminder step %s: no task of its own (broker?), run here", step.pk, exc_info=True)
        return False
    return True


@shared_task(name="reports.reminder_step", ignore_result=True)
def reminder_step_task(step_id: int, now: str) -> bool:
    """Carry out one due reminder step (handed on by ``reports.reminders_dispatch``);
    nothing if it is no longer due or another dispatcher has claimed it."""
    from reports.reminders import due_steps, reminder_step_run

    at = dt.datetime.fromisoformat(now)
    steps = due_steps(now=at, step_ids=[step_id])
    run = reminder_step_run(step=steps[0], on=timezone.localdate(at), now=at) if steps else None
    if run is not None and run.recipients:
        _deliver_soon()
    return run is not None


def _deliver_soon() -> None:
    """Send a round's deliveries now (the round is committed): beat's dispatch would
    within its 15 s, and still does if this cannot be enqueued.  Each campus's round
    starting its own dispatch also spreads the deliveries over the worker's processes
    (dispatchers skip each other's claimed rows)."""
    from notifications.tasks import deliveries_dispatch_task

    try:
        deliveries_dispatch_task.apply_async(expires=60)
    except Exception:
        logger.warning("could not enqueue the deliveries' dispatch; beat's will send them", exc_info=True)


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


@shared_task(name="reports.ledger_jobs_dispatch", ignore_result=True)
def ledger_jobs_dispatch_task(now: str | None = None) -> dict:
    """Every 5 s: build the queued background ledgers, put back those whose worker
    died, expire old files (see reports.ledger_jobs).  Safe to run several at once."""
    from reports.ledger_jobs import ledger_jobs_dispatch

    return ledger_jobs_dispatch(now=dt.datetime.fromisoformat(now) if now else None)
