"""Celery tasks of the students app: thin, idempotent, driven by beat only."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="students.roster_jobs_dispatch", ignore_result=True)
def roster_jobs_dispatch_task() -> dict:
    """Every 5 s: import the queued background roster uploads, put back those whose
    worker died (see students.roster_jobs).  Safe to run several at once."""
    from students.roster_jobs import roster_jobs_dispatch

    return roster_jobs_dispatch()
