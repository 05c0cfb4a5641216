"""Roster uploads imported in the background (后台导入).

Product rule: an upload larger than ``TONGXIN["ROSTER_SYNC_MAX_BYTES"]`` (1 MB: about
8,000 CSV rows, more in a compressed .xlsx) is not imported in the request — at
100,000 rows the check and the writes take 8 s from CSV and 24 s from .xlsx on a fast
machine.  The request checks the role and the file's type, stores the file with the
options and the uploader's language, and shows the job's page, which reloads itself;
beat's ``students.roster_jobs_dispatch`` (every 5 s) imports it with
:func:`students.roster.roster_import` as the uploader — their scope at that moment,
their name in every history row, the problems in their language — then drops the file
and keeps the result (counts and the first problems) for the uploader alone, until it
expires after ``ROSTER_JOB_KEEP_HOURS``.  The
shared mechanics (claim, lease, retries, the dispatch) are :mod:`config.jobs`; the
request never talks to the broker.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from campuses.scoping import Scope, scope_for
from config.jobs import (
    DISPATCH_BUDGET,
    JobPolicy,
    JobStatus,
    job_claim,
    job_fail,
    job_retry_or_fail,
    jobs_dispatch,
    jobs_sweep,
)
from config.tongxin import tongxin_setting
from students.models import RosterJob
from students.roster import RosterImportResult, may_import, roster_import

logger = logging.getLogger(__name__)

#: Problems kept with a result, and shown on the page (the rest are counted): a broken
#: 100,000-row file must not produce a page nobody can open.
KEPT_ERRORS = 1000
#: ``ROSTER_JOB_MAX_ATTEMPTS``, ``ROSTER_JOB_LEASE_SECONDS``, ``ROSTER_JOB_KEEP_HOURS``.
POLICY = JobPolicy("ROSTER")
#: What a job gives up when it is over: the file (ID numbers, phones) once it is
#: finished, the result (its problems quote the file's values) once it expires.
DROP_FILE = {"data": None}
DROP_ALL = {"data": None, "result": None}


def sync_max_bytes() -> int:
    return int(tongxin_setting("ROSTER_SYNC_MAX_BYTES", 1_000_000))


def roster_job_queue(*, user, scope: Scope, upload, allow_partial: bool, dry_run: bool) -> RosterJob:
    """Store ``upload`` (a file with ``name``) for the background, as ``user`` in the
    current language.  Raises PermissionDenied when ``scope`` may not import."""
    if not may_import(scope):
        raise PermissionDenied(_("导入花名册需要学工部、学院学工或校区专班职务"))
    data = upload.read()
    return RosterJob.objects.create(
        user=user,
        filename=getattr(upload, "name", "")[:255],
        size=len(data),
        data=data,
        allow_partial=allow_partial,
        dry_run=dry_run,
        language=translation.get_language() or settings.LANGUAGE_CODE,
    )


def result_record(result: RosterImportResult) -> dict:
    """What a finished job keeps of the import's result (JSON)."""
    return {
        "total_rows": result.total_rows,
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "skipped": result.skipped,
        "imported": result.imported,
        "dry_run": result.dry_run,
        "units_created": result.units_created,
        "error_rows": result.error_rows,
        "error_count": len(result.errors),
        "errors": [dataclasses.asdict(e) for e in result.errors[:KEPT_ERRORS]],
    }


def roster_job_run(*, job_id: int) -> RosterJob | None:
    """Import a queued job's file as its uploader, now, and keep the result; the file is
    dropped once the job is finished either way.  None when the job is not queued."""
    if not job_claim(RosterJob, job_id):
        return None
    job = RosterJob.objects.select_related("user").get(pk=job_id)
    mine = RosterJob.objects.filter(pk=job_id, status=JobStatus.RUNNING)
    with translation.override(job.language):
        if not job.user.is_active:
            job_fail(mine, _("上传人的账号已停用。"), drop=DROP_FILE)
            return RosterJob.objects.defer("data").get(pk=job_id)
        try:
            result = roster_import(
                source=io.BytesIO(bytes(job.data)),
                filename=job.filename,
                scope=scope_for(job.user),
                actor=job.user,
                allow_partial=job.allow_partial,
                dry_run=job.dry_run,
            )
        except PermissionDenied as exc:
            job_fail(mine, str(exc), drop=DROP_FILE)
        except Exception as exc:
            logger.exception("roster job %s failed (attempt %s)", job_id, job.attempts)
            job_retry_or_fail(
                mine,
                job.attempts,
                POLICY,
                error=f"{type(exc).__name__}: {exc}",
                gave_up=_("多次导入失败，请重新上传或联系管理员。"),
                drop=DROP_FILE,
            )
        else:
            mine.update(status=JobStatus.DONE, result=result_record(result), finished_at=timezone.now(), **DROP_FILE)
    return RosterJob.objects.defer("data").get(pk=job_id)


def roster_jobs_dispatch(*, now: dt.datetime | None = None, budget: dt.timedelta = DISPATCH_BUDGET) -> dict:
    """What beat runs every few seconds: put back (or give up, dropping the file) jobs
    whose worker died, expire results older than ``ROSTER_JOB_KEEP_HOURS``, then import
    the queued jobs, oldest first."""
    counts = jobs_sweep(
        RosterJob, POLICY, now=now or timezone.now(), timed_out=_("导入超时，请重新上传。"), drop=DROP_ALL
    )
    return {**counts, "run": jobs_dispatch(RosterJob, lambda pk: roster_job_run(job_id=pk), budget=budget)}


def roster_job_for(*, user, job_id: int) -> RosterJob:
    """The uploader's own job (DoesNotExist for anyone else's), without its file."""
    return RosterJob.objects.defer("data").get(pk=job_id, user=user)
