"""Ledgers built in the background (后台导出).

Product rule: a ledger that lists students — 《留校学生情况统计表》, the missing list,
the abnormal list — for a selection of more than ``TONGXIN["LEDGER_SYNC_MAX_STUDENTS"]``
enrolled students (a campus, the university: at 100,000 students the university's
《留校学生情况统计表》 holds 90,000 rows and takes 10–20 s to write) is not built in the
request.  The request checks everything it can — the parameters, the unit inside the
user's scope, the role — and stores a :class:`~reports.export_models.LedgerJob`; the
worker builds the workbook as that user (the scope and masking of the moment it is
built; the export audit written then) and keeps it for its owner alone.  Smaller
selections are answered at once, as before; anyone may ask for the background.

As with the notification outbox, the request never talks to the broker: the job is a
row, and beat's ``reports.ledger_jobs_dispatch`` (every 5 s) claims and builds what is
queued — several dispatches at once each claim a different job — so a Redis outage
loses no request, only delays it.  The dispatch also puts back a job whose worker died
(after its lease), gives up after ``LEDGER_JOB_MAX_ATTEMPTS`` and drops the files of
jobs finished more than ``LEDGER_JOB_KEEP_HOURS`` ago (the job stays listed).  A second
request for the same ledger while one is queued or running joins it (a double click,
a reload).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campuses.scoping import scope_for
from config.jobs import (
    ACTIVE,
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
from reports.export_models import ExportKind, LedgerJob
from reports.ledgers import (
    NOT_IN_SCOPE,
    Ledger,
    LedgerError,
    LedgerRequest,
    ledger_build,
    ledger_request,
    may_export_ledger,
)
from students.models import EnrolmentStatus

logger = logging.getLogger(__name__)

#: The ledgers with a row per student of the selection; the roll-up workbook has a row
#: per unit and is always answered at once.
STUDENT_LIST_KINDS = frozenset({ExportKind.STAY, ExportKind.MISSING, ExportKind.ABNORMAL})
#: ``LEDGER_JOB_MAX_ATTEMPTS``, ``LEDGER_JOB_LEASE_SECONDS``, ``LEDGER_JOB_KEEP_HOURS``.
POLICY = JobPolicy("LEDGER")


def sync_max_students() -> int:
    return int(tongxin_setting("LEDGER_SYNC_MAX_STUDENTS", 20000))


def selection_students(*, user, request: LedgerRequest) -> int:
    """Enrolled students of the request's selection that ``user`` sees: what decides
    whether a student list is built now or in the background."""
    students = scope_for(user).students().filter(enrolment_status=EnrolmentStatus.ENROLLED)
    if request.unit is not None:
        students = students.filter(request.unit.student_q())
    return students.count()


def ledger_deliver(
    *,
    user,
    kind: str,
    date: str | None = None,
    slot: str | None = None,
    unit: str | None = None,
    background: bool = False,
) -> Ledger | LedgerJob:
    """Answer a ledger request from raw parameters: the built :class:`Ledger`, or the
    background job (new or joined) for a student list over the limit or when
    ``background`` is asked.  Raises LedgerError (bad parameters), PermissionDenied
    (role) or DoesNotExist (unit not in scope) before anything is stored."""
    request = ledger_request(user=user, kind=kind, date=date, slot=slot, unit=unit)
    students = selection_students(user=user, request=request) if kind in STUDENT_LIST_KINDS else 0
    if background or students > sync_max_students():
        return ledger_job_queue(user=user, request=request, students=students)
    return ledger_build(user=user, request=request)


def _dedupe_key(request: LedgerRequest) -> str:
    p = request.parameters
    return f"{request.kind}:{p['date']}:{p['slot']}:{p['unit']}"


def ledger_job_queue(*, user, request: LedgerRequest, students: int = 0) -> LedgerJob:
    """Store a background job for ``request`` (checked) as ``user``, or return the job
    already queued or running for the same ledger (the dispatch builds it).  Raises
    PermissionDenied when the role may not export the ledger."""
    if not may_export_ledger(scope_for(user), request.kind):
        raise PermissionDenied(_("您无权导出%(ledger)s。") % {"ledger": ExportKind(request.kind).label})
    key = _dedupe_key(request)
    for _attempt in range(2):
        active = LedgerJob.objects.filter(user=user, dedupe_key=key, status__in=ACTIVE).first()
        if active is not None:
            return active
        try:
            with transaction.atomic():
                # The unit's name as it was asked for, for the list of jobs (not read back).
                unit_name = request.unit.name if request.unit else ""
                return LedgerJob.objects.create(
                    user=user,
                    kind=request.kind,
                    parameters={**request.parameters, "unit_name": unit_name},
                    dedupe_key=key,
                    students=students,
                )
        except IntegrityError:  # the same request, at the same moment, from another thread
            continue
    return LedgerJob.objects.get(user=user, dedupe_key=key, status__in=ACTIVE)


def ledger_job_run(*, job_id: int) -> LedgerJob | None:
    """Build a queued job's ledger (as its user, now) and keep the file.  None when the
    job is not queued (another worker took it, it finished, it expired).  A refusal —
    the unit left the user's scope, the role was withdrawn, the account was
    deactivated — fails the job with its reason; an unexpected error puts it back in
    the queue until its attempts run out."""
    if not job_claim(LedgerJob, job_id):
        return None
    job = LedgerJob.objects.select_related("user").get(pk=job_id)
    mine = LedgerJob.objects.filter(pk=job_id, status=JobStatus.RUNNING)
    p = job.parameters
    if not job.user.is_active:
        job_fail(mine, _("申请人的账号已停用。"))
        return LedgerJob.objects.defer("data").get(pk=job_id)
    try:
        with transaction.atomic():  # the export audit's row and the stored file, together
            request = ledger_request(user=job.user, kind=job.kind, date=p["date"], slot=p["slot"], unit=p["unit"])
            ledger = ledger_build(user=job.user, request=request)
            mine.update(
                status=JobStatus.DONE,
                data=ledger.data,
                filename=ledger.filename,
                ascii_filename=ledger.ascii_filename,
                row_count=ledger.rows,
                error="",
                finished_at=timezone.now(),
            )
    except (LedgerError, PermissionDenied, ObjectDoesNotExist) as exc:
        reason = str(NOT_IN_SCOPE) if isinstance(exc, ObjectDoesNotExist) else _refusal(exc)
        job_fail(mine, reason)
    except Exception as exc:
        logger.exception("ledger job %s failed (attempt %s)", job_id, job.attempts)
        job_retry_or_fail(
            mine,
            job.attempts,
            POLICY,
            error=f"{type(exc).__name__}: {exc}",
            gave_up=_("多次生成失败，请重新申请或联系管理员。"),
        )
    return LedgerJob.objects.defer("data").get(pk=job_id)


def _refusal(exc: Exception) -> str:
    if isinstance(exc, LedgerError):
        return "；".join(exc.messages)
    return str(exc) or _("您无权导出该台账。")


def ledger_jobs_dispatch(*, now: dt.datetime | None = None, budget: dt.timedelta = DISPATCH_BUDGET) -> dict:
    """What beat runs every few seconds: first the housekeeping (:func:`ledger_jobs_sweep`),
    then the queued jobs, oldest first (:func:`config.jobs.jobs_dispatch`, each claimed
    by :func:`ledger_job_run`), until none is left or ``budget`` is spent.  Returns the
    counts."""
    counts = ledger_jobs_sweep(now=now)
    return {**counts, "run": jobs_dispatch(LedgerJob, lambda pk: ledger_job_run(job_id=pk), budget=budget)}


def ledger_jobs_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Put back (or give up) running jobs past their lease — their worker died — and
    drop the files of finished jobs older than ``LEDGER_JOB_KEEP_HOURS``."""
    return jobs_sweep(
        LedgerJob, POLICY, now=now or timezone.now(), timed_out=_("生成超时，请重新申请。"), drop={"data": None}
    )


def ledger_job_file(*, user, job_id: int) -> LedgerJob:
    """A finished job of ``user``'s own, with its file, for download.  Someone else's
    job, or none, → DoesNotExist; not finished (or expired) → LedgerError; a role that
    may no longer export the ledger → PermissionDenied."""
    job = LedgerJob.objects.get(pk=job_id, user=user)
    if job.status != JobStatus.DONE or job.data is None:
        raise LedgerError(_("该导出尚未完成或已过期（%(status)s）。") % {"status": job.get_status_display()})
    if not may_export_ledger(scope_for(user), job.kind):
        raise PermissionDenied(_("您已无权导出%(ledger)s。") % {"ledger": job.get_kind_display()})
    return job
