"""Background jobs kept as rows (后台任务): what the background ledgers
(:mod:`reports.ledger_jobs`) and the background roster imports
(:mod:`students.roster_jobs`) share.

A job is a row with ``status`` (:class:`JobStatus`), ``attempts``, ``created_at``,
``started_at``, ``finished_at`` and ``error``.  The request that asks for one only
writes the row — it never talks to the broker — and a beat-driven dispatch claims and
runs what is queued: several dispatches at once each claim a different job (the claim
is one conditional UPDATE, on every database), a job whose worker died is put back
after its lease, an unexpected error is retried by a later dispatch until the attempts
run out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django.db import models
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config.tongxin import tongxin_setting


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("排队中")
    RUNNING = "running", _("进行中")
    DONE = "done", _("已完成")
    FAILED = "failed", _("失败")
    EXPIRED = "expired", _("已过期")


#: A job in these states is still to finish.
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
#: A dispatch runs queued jobs one after another for at most this long, then leaves the
#: rest to the next one (beat sends one every few seconds).
DISPATCH_BUDGET = dt.timedelta(seconds=50)


@dataclass(frozen=True)
class JobPolicy:
    """How one kind of job is retried and kept, from ``settings.TONGXIN``:
    ``<prefix>_JOB_MAX_ATTEMPTS``, ``<prefix>_JOB_LEASE_SECONDS`` (a job running longer
    has lost its worker), ``<prefix>_JOB_KEEP_HOURS`` (a finished job's file or result
    is dropped after it)."""

    prefix: str

    def _value(self, name: str, default: int) -> int:
        return int(tongxin_setting(f"{self.prefix}_JOB_{name}", default))

    @property
    def max_attempts(self) -> int:
        return self._value("MAX_ATTEMPTS", 3)

    @property
    def lease(self) -> dt.timedelta:
        return dt.timedelta(seconds=self._value("LEASE_SECONDS", 900))

    @property
    def keep_hours(self) -> int:
        return self._value("KEEP_HOURS", 72)


class BackgroundJob(models.Model):
    """The fields every background job has (with its own ``created_at``)."""

    status = models.CharField(_("状态"), max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(_("尝试次数"), default=0)
    error = models.TextField(_("失败原因"), blank=True)
    started_at = models.DateTimeField(_("开始时间"), null=True, blank=True)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)

    class Meta:
        abstract = True


def job_claim(model: type[models.Model], job_id: int) -> bool:
    """Take the queued job ``job_id`` for this worker (running, one more attempt); False
    when it is not queued (another dispatch took it, it finished, it expired)."""
    return bool(
        model.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now()
        )
    )


def job_fail(jobs: models.QuerySet, error: str, *, drop: dict | None = None) -> None:
    """Fail the (running) job for good with ``error``, its ``drop`` fields cleared."""
    jobs.update(status=JobStatus.FAILED, error=str(error), finished_at=timezone.now(), **(drop or {}))


def job_retry_or_fail(
    jobs: models.QuerySet, attempts: int, policy: JobPolicy, *, error: str, gave_up: str, drop: dict | None = None
) -> bool:
    """After an unexpected error: back in the queue (True) while attempts remain, else
    failed with ``gave_up`` and the error, its ``drop`` fields cleared (False)."""
    if attempts < policy.max_attempts:
        jobs.update(status=JobStatus.QUEUED, error=error[:2000])
        return True
    job_fail(jobs, f"{gave_up}（{error[:1900]}）", drop=drop)
    return False


def jobs_sweep(
    model: type[models.Model], policy: JobPolicy, *, now: dt.datetime, timed_out: str, drop: dict
) -> dict[str, int]:
    """Put back (or give up, with ``timed_out``) running jobs past the policy's lease,
    and expire finished jobs older than its ``keep_hours``; a job given up or expired
    has its ``drop`` fields set (a file, a result, to None)."""
    stale = model.objects.filter(status=JobStatus.RUNNING, started_at__lt=now - policy.lease)
    given_up = stale.filter(attempts__gte=policy.max_attempts).update(
        status=JobStatus.FAILED, error=str(timed_out), finished_at=now, **drop
    )
    put_back = stale.filter(attempts__lt=policy.max_attempts).update(status=JobStatus.QUEUED)
    keep = dt.timedelta(hours=policy.keep_hours)
    expired = model.objects.filter(status=JobStatus.DONE, finished_at__lt=now - keep).update(
        status=JobStatus.EXPIRED, **drop
    )
    return {"put_back": put_back, "given_up": given_up, "expired": expired}


def jobs_dispatch(
    model: type[models.Model], run: Callable[[int], object], *, budget: dt.timedelta = DISPATCH_BUDGET
) -> int:
    """Run the queued jobs, oldest first, each through ``run(job_id)`` (which claims it
    and returns None when another dispatch had it), until none is left or ``budget`` is
    spent; a job put back after an error waits for the next dispatch.  Returns how many
    ran."""
    started = timezone.now()
    tried: list[int] = []
    while timezone.now() - started < budget:
        waiting = model.objects.filter(status=JobStatus.QUEUED).exclude(pk__in=tried)
        for job_id in waiting.order_by("created_at", "pk").values_list("pk", flat=True)[:5]:
            if run(job_id) is not None:
                tried.append(job_id)
                break
        else:
            break
    return len(tried)
