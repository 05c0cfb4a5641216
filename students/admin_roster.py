"""Roster import and export pages for the student admin (花名册导入导出).

:class:`RosterAdminMixin` goes first in ``StudentAdmin``'s bases.  It adds:

- ``import/``: an upload page (导入花名册) showing the error report or the summary;
  for superusers, 学工部, 学院学工 and 校区专班 only (:data:`students.roster.IMPORT_ROLES`);
- ``export/``: the whole roster of the user's scope as ``.xlsx`` (``?template=1``: an
  empty file with the headers, to fill in);
- the admin action ``export_roster_xlsx`` (导出花名册(Excel)) for the selected
  students; export is also open to counsellors (:data:`students.roster.EXPORT_ROLES`).

Access is decided by :func:`campuses.scoping.scope_for` and the roles it finds, and
every export goes through the scoped, masked :func:`students.roster.roster_export_xlsx`.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.validators import FileExtensionValidator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campuses.scoping import scope_for
from config.jobs import ACTIVE, JobStatus
from students.models import RosterJob
from students.roster import (
    HEADERS,
    REQUIRED_HEADERS,
    UNIT_LABELS,
    may_export,
    may_import,
    roster_export_workbook,
    roster_import,
)
from students.roster_jobs import result_record, roster_job_for, roster_job_queue, sync_max_bytes
from students.xlsx import attachment_response


def roster_response(data: bytes, *, stem: str = "学生花名册", ascii_stem: str = "students") -> HttpResponse:
    day = timezone.localdate().strftime("%Y%m%d")
    return attachment_response(data, name=f"{stem}_{day}.xlsx", ascii_name=f"{ascii_stem}_{day}.xlsx")


def audited_roster_response(request: HttpRequest, scope, *, queryset=None, template: bool = False) -> HttpResponse:
    """Build the scoped roster workbook, record the export (导出记录) and answer it."""
    # The export audit lives with the ledgers (reports); imported here, at the edge.
    from reports.ledgers import export_record

    data, count = roster_export_workbook(scope=scope, queryset=queryset)
    stem, ascii_stem = ("花名册模板", "roster_template") if template else ("学生花名册", "students")
    response = roster_response(data, stem=stem, ascii_stem=ascii_stem)
    parameters = {"selection": True} if queryset is not None and not template else {}
    export_record(
        user=request.user,
        kind="roster_template" if template else "roster",
        parameters=parameters,
        row_count=count,
        filename=f"{stem}_{timezone.localdate():%Y%m%d}.xlsx",
    )
    return response


class RosterImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("花名册文件"),
        help_text=gettext_lazy("Excel（.xlsx）或 CSV（UTF-8 或 GBK 编码）；表头行须含“学号”等列名。"),
        validators=[FileExtensionValidator(["xlsx", "csv"], message=gettext_lazy("只支持 .xlsx 或 .csv 文件"))],
    )
    allow_partial = forms.BooleanField(
        label=gettext_lazy("只导入没有问题的行"),
        required=False,
        help_text=gettext_lazy("不勾选时，文件中有任何问题都不会导入。"),
    )
    dry_run = forms.BooleanField(label=gettext_lazy("只校验，不保存"), required=False)

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class RosterAdminMixin:
    """Adds roster import/export to a Student ModelAdmin (see the module docstring)."""

    change_list_template = "admin/students/student/change_list.html"
    roster_import_template = "admin/students/student/roster_import.html"

    # -- wiring -----------------------------------------------------------
    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        urls = [
            path("import/", self._roster_view(self.roster_import_view), name="{}_{}_roster_import".format(*info)),
            path("export/", self._roster_view(self.roster_export_view), name="{}_{}_roster_export".format(*info)),
        ]
        return urls + super().get_urls()  # before the model admin's catch-all <object_id>/

    def _roster_view(self, view):
        wrapped = self.admin_site.admin_view(view)

        @functools.wraps(view)
        def inner(request: HttpRequest, *args, **kwargs):
            # A signed-in user without admin access is refused, not sent to the login page.
            if request.user.is_authenticated and not self.admin_site.has_permission(request):
                raise PermissionDenied
            return wrapped(request, *args, **kwargs)

        return inner

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        if self.actions is not None and may_export(scope_for(request.user)):
            actions["export_roster_xlsx"] = self.get_action("export_roster_xlsx")
        return actions

    def changelist_view(self, request: HttpRequest, extra_context=None):
        scope = scope_for(request.user)
        context = {"roster_can_import": may_import(scope), "roster_can_export": may_export(scope)}
        return super().changelist_view(request, {**context, **(extra_context or {})})

    # -- export -------------------------------------------------------------
    @admin.action(description=gettext_lazy("导出花名册(Excel)"))
    def export_roster_xlsx(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        scope = scope_for(request.user)
        if not may_export(scope):
            raise PermissionDenied
        return audited_roster_response(request, scope, queryset=queryset)

    def roster_export_view(self, request: HttpRequest) -> HttpResponse:
        scope = scope_for(request.user)
        if not may_export(scope):
            raise PermissionDenied
        if request.GET.get("template"):
            return audited_roster_response(request, scope, queryset=self.model._default_manager.none(), template=True)
        return audited_roster_response(request, scope)

    # -- import -------------------------------------------------------------
    def roster_import_view(self, request: HttpRequest) -> HttpResponse:
        """The upload form and its result; an upload over ``ROSTER_SYNC_MAX_BYTES`` goes
        to the background (students.roster_jobs) and this page, with ``?job=<id>``,
        shows the job until its result is in."""
        scope = scope_for(request.user)
        if not may_import(scope):
            raise PermissionDenied
        result, job = None, None
        if request.method == "POST":
            form = RosterImportForm(request.POST, request.FILES)
            if form.is_valid():
                upload = form.cleaned_data["file"]
                options = {"allow_partial": form.cleaned_data["allow_partial"], "dry_run": form.cleaned_data["dry_run"]}
                if upload.size > sync_max_bytes():
                    job = roster_job_queue(user=request.user, scope=scope, upload=upload, **options)
                    self.message_user(
                        request,
                        _("文件较大（%(size)s），已转入后台导入；本页会自动刷新，导入完成后显示结果。")
                        % {"size": filesizeformat(job.size)},
                        messages.SUCCESS,
                    )
                    return redirect(f"{request.path}?job={job.pk}")
                imported = roster_import(
                    source=upload, filename=upload.name, scope=scope, actor=request.user, **options
                )
                result = _shown(result_record(imported))  # as a background job keeps it
                if result.imported:
                    self.message_user(
                        request,
                        _("花名册已导入：新增 %(created)s，更新 %(updated)s，未变 %(unchanged)s。")
                        % {"created": result.created, "updated": result.updated, "unchanged": result.unchanged},
                        messages.SUCCESS,
                    )
        else:
            form = RosterImportForm()
            if request.GET.get("job"):
                job = self._own_job(request)
                if job.status == JobStatus.DONE and job.result:
                    result = _shown(job.result)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": _("导入花名册"),
            "form": form,
            "result": result,
            "job": job,
            "job_pending": job is not None and job.status in ACTIVE,
            "errors": result.errors if result else [],
            "error_count": result.error_count if result else 0,
            "hidden_errors": result.error_count - len(result.errors) if result else 0,
            "units_created": [(UNIT_LABELS[k], v) for k, v in result.units_created.items()] if result else [],
            "headers": HEADERS,
            "required_headers": REQUIRED_HEADERS,
            "optional_headers": [h for h in HEADERS if h not in REQUIRED_HEADERS],
            "has_view_permission": self.has_view_permission(request),
            "recent_jobs": RosterJob.objects.filter(user=request.user).defer("data")[:5],
        }
        return TemplateResponse(request, self.roster_import_template, context)

    def _own_job(self, request: HttpRequest) -> RosterJob:
        raw = request.GET.get("job", "")
        try:
            return roster_job_for(user=request.user, job_id=int(raw))
        except (ValueError, RosterJob.DoesNotExist):
            raise Http404(_("没有这项导入")) from None


def _shown(record: dict) -> SimpleNamespace:
    """An import's result as kept (:func:`students.roster_jobs.result_record`: the counts
    and the first problems), as the page reads it — the same for an import done now and
    one done in the background."""
    errors = [SimpleNamespace(**error) for error in record.get("errors", [])]
    return SimpleNamespace(**{**record, "errors": errors})
