"""Ledger downloads (台账下载): thin views over :func:`reports.ledgers.ledger_export`.

``GET /ledgers/<kind>/?date=YYYY-MM-DD&slot=<code>&unit=<level>:<id>`` answers the
workbook as an attachment with a Chinese file name; a role that may not export that
ledger gets 403, a malformed parameter 400 and a unit outside the user's scope 404.
Every download is recorded in the export audit by the service.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.views.decorators.http import require_GET

from reports.export_models import ExportKind
from reports.ledgers import LedgerError, ledger_export
from students.xlsx import attachment_response


def _download(request: HttpRequest, kind: str) -> HttpResponse:
    try:
        ledger = ledger_export(
            user=request.user,
            kind=kind,
            date=request.GET.get("date"),
            slot=request.GET.get("slot"),
            unit=request.GET.get("unit"),
        )
    except LedgerError as exc:
        return HttpResponseBadRequest("；".join(exc.messages), content_type="text/plain; charset=utf-8")
    except ObjectDoesNotExist:
        raise Http404("单位不存在或不在您的管理范围内") from None
    response = attachment_response(ledger.data, name=ledger.filename, ascii_name=ledger.ascii_filename)
    response["Cache-Control"] = "no-store"
    return response


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
