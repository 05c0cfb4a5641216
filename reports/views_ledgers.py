"""Ledger downloads (台账下载): thin views over :func:`reports.ledger_jobs.ledger_deliver`.

``GET /ledgers/<kind>/?date=YYYY-MM-DD&slot=<code>&unit=<level>:<id>`` answers the
workbook as an attachment with a Chinese file name; a role that may not export that
ledger gets 403, a malformed parameter 400 and a unit outside the user's scope 404.
A student list over ``TONGXIN["LEDGER_SYNC_MAX_STUDENTS"]`` (or with ``background=1``)
is built in the background instead: the answer is a redirect (302) to the user's
background exports (后台导出) in the admin, where ``/ledgers/jobs/<id>/download/``
gives the file once it is built — to its owner only.  Every download is recorded in
the export audit by the service.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from config.jobs import JobStatus
from reports.export_models import ExportKind, LedgerJob
from reports.ledger_jobs import ledger_deliver, ledger_job_file
from reports.ledgers import NOT_IN_SCOPE, LedgerError
from students.xlsx import attachment_response


def _bad_request(exc: LedgerError) -> HttpResponse:
    return HttpResponseBadRequest("；".join(exc.messages), content_type="text/plain; charset=utf-8")


def _file(data: bytes, *, name: str, ascii_name: str) -> HttpResponse:
    response = attachment_response(bytes(data), name=name, ascii_name=ascii_name)
    response["Cache-Control"] = "no-store"
    return response


def _download(request: HttpRequest, kind: str) -> HttpResponse:
    try:
        answer = ledger_deliver(
            user=request.user,
            kind=kind,
            date=request.GET.get("date"),
            slot=request.GET.get("slot"),
            unit=request.GET.get("unit"),
            background=request.GET.get("background") == "1",
        )
    except LedgerError as exc:
        return _bad_request(exc)
    except ObjectDoesNotExist:
        raise Http404(NOT_IN_SCOPE) from None
    if isinstance(answer, LedgerJob):
        return _queued(request, answer)
    return _file(answer.data, name=answer.filename, ascii_name=answer.ascii_filename)


def _queued(request: HttpRequest, job: LedgerJob) -> HttpResponse:
    if job.status == JobStatus.RUNNING:
        text = _("%(ledger)s正在后台生成，完成后在此下载。")
    elif job.students:
        text = _("范围内有 %(students)s 名学生，%(ledger)s已转入后台生成，完成后在此下载。")
    else:
        text = _("%(ledger)s已转入后台生成，完成后在此下载。")
    messages.success(request, text % {"ledger": job.get_kind_display(), "students": f"{job.students:,}"})
    return redirect("admin:reports_ledgerjob_changelist", permanent=False)


@require_GET
@login_required
def job_download(request: HttpRequest, pk: int) -> HttpResponse:
    """A background ledger's file, for the user who asked for it."""
    try:
        job = ledger_job_file(user=request.user, job_id=pk)
    except LedgerError as exc:
        return HttpResponse("；".join(exc.messages), status=409, content_type="text/plain; charset=utf-8")
    except ObjectDoesNotExist:
        raise Http404(_("没有这项导出")) from None
    return _file(job.data, name=job.filename, ascii_name=job.ascii_filename)


@require_GET
@login_required
def stay(request: HttpRequest) -> HttpResponse:
    """《留校学生情况统计表》."""
    return _download(request, ExportKind.STAY)


@require_GET
@login_required
def rollup(request: HttpRequest) -> HttpResponse:
    """The day's roll-up workbook, one sheet per level."""
    return _download(request, ExportKind.ROLLUP)


@require_GET
@login_required
def missing(request: HttpRequest) -> HttpResponse:
    """未报名单 (names only for a class monitor)."""
    return _download(request, ExportKind.MISSING)


@require_GET
@login_required
def abnormal(request: HttpRequest) -> HttpResponse:
    """异常名单 (roles allowed health data only)."""
    return _download(request, ExportKind.ABNORMAL)
