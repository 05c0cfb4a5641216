"""Measurement 6: a reminder round (催报) to every student through a real Celery worker
on Redis.

- figure: from enqueuing ``reports.reminders_dispatch`` (with ``now`` just after the
  morning slots open, so the STUDENTS_ALL step of every campus is due) until every
  in-app delivery of the round is sent: the dispatch hands each campus's step to a
  task of its own (``reports.reminder_step``: the worker's two processes send the
  rounds side by side), each step writes its notifications and outbox
  (:func:`reports.reminders.reminder_step_run` →
  :func:`notifications.services.notify`) and, once committed, enqueues
  ``notifications.deliveries_dispatch``, which completes them; the benchmark enqueues
  one more when every run is committed, as beat would within its 15 s tick.  Also: how
  long the measuring process took to enqueue (its two tasks; the worker enqueues the
  steps' and their dispatches, one each per campus); notifications created = students
  expected;
- reference: one task per student — the time to enqueue as many tiny tasks
  (``config.ping``) on a queue no worker reads, which is then purged.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.db import connection
from django.utils import timezone

from bench.core import QueryCounter, median_pick, round_complete
from notifications.models import Delivery, DeliveryStatus, Notification
from notifications.services import deliveries_dispatch
from notifications.tasks import deliveries_dispatch_task
from reports.reminder_models import ReminderRun, ReminderStep, StepKind
from reports.reminders import expected_students, fire_time, reminders_dispatch
from reports.tasks import reminders_dispatch_task

#: The round is sent as if it were this local time: just after the morning slots open.
ROUND_AT = dt.time(6, 0, 30)
PER_STUDENT_QUEUE = "bench_per_student"


def round_now(today: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(today, ROUND_AT), timezone.get_default_timezone())


def clean_round(today: dt.date) -> None:
    """Forget the day's reminder runs, notifications and deliveries (set-based)."""
    key = f"remind:{today.isoformat()}:"
    notifications = Notification.objects.filter(dedupe_key__startswith=key)
    Delivery.objects.filter(notification__in=notifications.values("pk"))._raw_delete(connection.alias)
    notifications._raw_delete(connection.alias)
    ReminderRun.objects.filter(date=today).delete()


def due_steps(now: dt.datetime) -> list[ReminderStep]:
    today = timezone.localdate(now)
    steps = ReminderStep.objects.filter(active=True, slot__active=True).select_related("slot")
    return [s for s in steps if fire_time(s, today) <= now]


def expected_recipients(now: dt.datetime) -> int:
    today = timezone.localdate(now)
    total = 0
    for step in due_steps(now):
        if step.kind == StepKind.STUDENTS_ALL:
            students = expected_students(slot=step.slot, on=today, missing_only=False)
            total += students.filter(user__isnull=False, user__is_active=True).count()
    return total


def _wait(probe, *, timeout: float, what: str, worker: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        if worker is not None and worker.poll() is not None:
            raise RuntimeError(f"the Celery worker exited while waiting for {what}")
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def measure_round(*, today: dt.date, timeout: float = 300, worker: subprocess.Popen | None = None) -> dict:
    """The round through the worker that is running (see the module docstring)."""
    now = round_now(today)
    clean_round(today)
    steps = due_steps(now)
    expected = expected_recipients(now)
    _warm_broker()
    wall_start = timezone.now()
    started = time.perf_counter()
    reminders_dispatch_task.apply_async(kwargs={"now": now.isoformat()})
    enqueue_round = time.perf_counter() - started
    finished = ReminderRun.objects.filter(date=today, finished_at__isnull=False)
    _wait(lambda: finished.count() >= len(steps), timeout=timeout, what="the reminder runs", worker=worker)
    written = time.perf_counter() - started
    before_dispatch = time.perf_counter()
    deliveries_dispatch_task.apply_async()
    enqueue_dispatch = time.perf_counter() - before_dispatch
    notifications = Notification.objects.filter(dedupe_key__startswith=f"remind:{today.isoformat()}:").count()
    sent = Delivery.objects.filter(created_at__gte=wall_start, status=DeliveryStatus.SENT)
    _wait(lambda: sent.count() >= notifications, timeout=timeout, what="the deliveries", worker=worker)
    done = time.perf_counter() - started
    return {
        "round_at": now.isoformat(),
        "steps": len(steps),
        "expected_students": expected,
        "notifications": notifications,
        "delivered": sent.count(),
        "runs_written_seconds": round(written, 3),
        "done_seconds": round(done, 3),
        "enqueue_seconds": enqueue_round + enqueue_dispatch,
        "tasks_enqueued": 2,
    }


def measure_rounds(*, today: dt.date, runs: int, timeout: float = 300, worker: subprocess.Popen | None = None) -> dict:
    """:func:`measure_round` ``runs`` times through the same worker (each round cleans
    the one before): a round of a second or two at the small size moves by half from one
    run to the next on this kind of machine, so the figure is the median round's, with
    every round's time in ``runs_done_seconds``."""
    rounds = [measure_round(today=today, timeout=timeout, worker=worker) for _ in range(max(runs, 1))]
    return median_round(rounds)


def median_round(rounds: list[dict]) -> dict:
    """The round of median ``done_seconds`` (of an even number, the slower of the middle
    two), with every round's time in ``runs_done_seconds`` and how many rounds were
    complete (:func:`round_complete`) in ``runs_complete``: a round that reminded too few
    counts against 6c even when it is not the median."""
    chosen = median_pick(rounds, lambda r: r["done_seconds"])
    return {
        **chosen,
        "runs_done_seconds": [r["done_seconds"] for r in rounds],
        "runs_complete": sum(1 for r in rounds if round_complete(r)),
    }


def _warm_broker() -> None:
    """Open the broker connection before timing (both sides pay it once, not per task)."""
    from config.tasks import ping_task

    ping_task.apply_async()


def measure_inprocess(*, today: dt.date) -> dict:
    """The same round called in this process: seconds and SQL statements."""
    now = round_now(today)
    clean_round(today)
    with QueryCounter() as counter:
        started = time.perf_counter()
        runs = reminders_dispatch(now=now)
        written = time.perf_counter() - started
        delivered = deliveries_dispatch()
        done = time.perf_counter() - started
    return {
        "recipients": sum(r.recipients for r in runs),
        "delivered": delivered,
        "runs_written_seconds": round(written, 3),
        "done_seconds": round(done, 3),
        "queries": counter.count,
    }


def enqueue_per_student(n: int, *, sample: int | None = None) -> dict:
    """Enqueue tiny tasks one by one (as ``.delay()`` in a loop would), then purge them:
    ``sample`` of them (default all ``n``), the time extrapolated linearly to ``n`` —
    each ``apply_async`` is one Redis round trip, so the loop is linear and timing all
    100,000 only costs the run minutes."""
    from config.celery_app import app
    from config.tasks import ping_task

    timed = min(sample or n, n)
    _warm_broker()
    started = time.perf_counter()
    for _ in range(timed):
        ping_task.apply_async(queue=PER_STUDENT_QUEUE)
    seconds = time.perf_counter() - started
    with app.connection_for_write() as conn:
        purged = conn.default_channel.queue_purge(PER_STUDENT_QUEUE)
    return {
        "tasks": n,
        "timed_tasks": timed,
        "timed_seconds": round(seconds, 3),
        "enqueue_seconds": round(seconds * n / max(timed, 1), 3),
        "purged": purged,
    }


def start_worker(*, env: dict, log_path: Path, concurrency: int = 2) -> subprocess.Popen:
    """``celery -A config worker`` (prefork, as production runs it) on the benchmark's
    database and Redis; returns once it is ready."""
    hostname = f"bench-{uuid.uuid4().hex[:8]}@localhost"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "info",
        "--hostname",
        hostname,
        "--without-gossip",
        "--without-mingle",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    ready = f"{hostname} ready."
    _wait(lambda: ready in log_path.read_text(errors="replace"), timeout=60, what="the worker", worker=process)
    return process
