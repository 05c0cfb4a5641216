"""Admin for the cluster alerts (聚集性预警), the export audit (导出记录) and the ledger
download page (台账下载).

- Cluster alerts: the list shows the alerts the user sees (:func:`reports.alerts.alert_list`),
  filtered by state, level and campus; actions 确认 and 关闭 (closing asks for a note
  on an intermediate page); the change page is read-only and lists the students
  involved that the user reaches (names, class, dorm — no phone, no ID number).
  Every change goes through :mod:`reports.alerts` and is kept in history.
- Export records: the university admin (and a superuser) only; append-only.
- Ledger downloads: one page with a form per ledger the user may export, pointing at
  the ``ledgers:`` URLs.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from simple_history.admin import SimpleHistoryAdmin

from campuses.admin import ScopedAdminMixin
from campuses.models import Building, Campus, College, Grade, Role, SchoolClass, University
from campuses.scoping import Scope, scope_for
from config.jobs import ACTIVE, JobStatus
from reports.alert_models import ACTIVE_STATES, ClusterAlert
from reports.alerts import (
    ALERT_ROLES,
    alert_members,
    alert_visible_q,
    cluster_alert_acknowledge,
    cluster_alert_close,
)
from reports.export_models import ExportKind, ExportRecord, LedgerDownload, LedgerJob
from reports.ledger_jobs import POLICY, STUDENT_LIST_KINDS, sync_max_students
from reports.ledgers import LEDGER_KINDS, checkin_slot_codes, may_export_ledger
from reports.models import SlotCode

NO_ROLES: frozenset[str] = frozenset()
ALL_ROLES = frozenset(Role.values)


class AlertCampusFilter(admin.SimpleListFilter):
    """Campuses in the user's scope (never a campus they cannot see)."""

    title = _("校区")
    parameter_name = "campus"

    def lookups(self, request, model_admin):
        return [(c.pk, str(c)) for c in scope_for(request.user).units(Campus)]

    def queryset(self, request, queryset):
        return queryset.filter(campus_id=self.value()) if self.value() else queryset


class CloseAlertForm(forms.Form):
    note = forms.CharField(
        label=_("处理说明"),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        max_length=1000,
        help_text=_("写明采取的措施（如：已安排核酸检测、隔离观察、消杀），关闭后不能修改。"),
    )


@admin.register(ClusterAlert)
class ClusterAlertAdmin(ScopedAdminMixin, SimpleHistoryAdmin):
    """聚集性预警: read-only rows changed by the 确认 / 关闭 actions only."""

    view_roles = ALERT_ROLES
    add_roles = change_roles = delete_roles = NO_ROLES
    list_display = [
        "first_seen",
        "level",
        "unit_name",
        "campus",
        "college",
        "case_count",
        "state",
        "last_seen",
        "acknowledged_by",
        "closed_at",
    ]
    list_display_links = ["unit_name"]
    list_filter = ["state", "level", AlertCampusFilter, "first_seen"]
    list_select_related = ["campus", "college", "acknowledged_by"]
    search_fields = ["unit_name"]
    actions = ["acknowledge_alerts", "close_alerts"]
    readonly_fields = [
        "level",
        "unit_name",
        "campus",
        "college",
        "case_count",
        "min_cases",
        "window_hours",
        "window_start",
        "window_end",
        "first_seen",
        "last_seen",
        "state",
        "acknowledged_by",
        "acknowledged_at",
        "closed_by",
        "closed_at",
        "close_note",
    ]
    fieldsets = [
        (None, {"fields": ["level", "unit_name", "campus", "college", "state"]}),
        (
            _("聚集情况"),
            {
                "fields": [
                    "case_count",
                    "min_cases",
                    "window_hours",
                    "window_start",
                    "window_end",
                    "first_seen",
                    "last_seen",
                ]
            },
        ),
        (_("处理"), {"fields": ["acknowledged_by", "acknowledged_at", "closed_by", "closed_at", "close_note"]}),
    ]
    change_form_template = "admin/reports/clusteralert/change_form.html"

    def scope_queryset(self, scope: Scope, qs: QuerySet) -> QuerySet:
        return qs.filter(alert_visible_q(scope))

    def has_handle_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, ALERT_ROLES)

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        members = list(alert_members(user=request.user, alert_id=obj.pk)) if obj is not None else []
        context = {
            "members": members,
            "hidden_members": max(0, obj.case_count - len(members)) if obj is not None else 0,
            "can_handle": obj is not None and obj.state in ACTIVE_STATES and self.has_handle_permission(request),
            "changelist_url": reverse("admin:reports_clusteralert_changelist"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return super().change_view(request, object_id, form_url, {**context, **(extra_context or {})})

    # -- actions -------------------------------------------------------------
    @admin.action(description=_("确认所选预警"), permissions=["handle"])
    def acknowledge_alerts(self, request: HttpRequest, queryset: QuerySet) -> None:
        done, refused = 0, []
        for alert_id in queryset.filter(state__in=ACTIVE_STATES).values_list("id", flat=True):
            try:
                cluster_alert_acknowledge(actor=request.user, alert_id=alert_id)
            except ValidationError as exc:
                refused.extend(exc.messages)
                continue
            done += 1
        self.message_user(
            request, ngettext("已确认 %(n)d 条预警。", "已确认 %(n)d 条预警。", done) % {"n": done}, messages.SUCCESS
        )
        if refused:
            self.message_user(request, "；".join(sorted(set(refused))), messages.WARNING)

    @admin.action(description=_("关闭所选预警(需填写处理说明)"), permissions=["handle"])
    def close_alerts(self, request: HttpRequest, queryset: QuerySet):
        form = CloseAlertForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            done, refused = 0, []
            for alert_id in queryset.filter(state__in=ACTIVE_STATES).values_list("id", flat=True):
                try:
                    cluster_alert_close(actor=request.user, alert_id=alert_id, note=form.cleaned_data["note"])
                except ValidationError as exc:
                    refused.extend(exc.messages)
                    continue
                done += 1
            self.message_user(
                request,
                ngettext("已关闭 %(n)d 条预警。", "已关闭 %(n)d 条预警。", done) % {"n": done},
                messages.SUCCESS,
            )
            if refused:
                self.message_user(request, "；".join(sorted(set(refused))), messages.WARNING)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("关闭预警"),
            "opts": self.model._meta,
            "alerts": queryset.filter(state__in=ACTIVE_STATES).select_related("campus"),
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        }
        return TemplateResponse(request, "admin/reports/clusteralert/close.html", context)


class ViewOnlyAdminMixin:
    """An admin page nobody adds to, changes or deletes from, and without bulk actions
    (the export audit, the ledger pages): whatever the role."""

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_actions(self, request: HttpRequest):
        return {}


@admin.register(ExportRecord)
class ExportRecordAdmin(ViewOnlyAdminMixin, ScopedAdminMixin, admin.ModelAdmin):
    """导出记录: who exported what and how many rows; the university admin only;
    append-only (no add, change or delete, for anyone)."""

    view_roles = frozenset({Role.UNIVERSITY_ADMIN})
    add_roles = change_roles = delete_roles = NO_ROLES
    list_display = ["created_at", "username", "kind", "row_count", "filename", "parameters_shown"]
    list_filter = ["kind", "created_at"]
    search_fields = ["username", "filename"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "user", "username", "kind", "parameters", "row_count", "filename"]
    show_full_result_count = False

    def scope_queryset(self, scope: Scope, qs: QuerySet) -> QuerySet:
        return qs if scope.has_role(Role.UNIVERSITY_ADMIN) else qs.none()

    @admin.display(description=_("参数"))
    def parameters_shown(self, obj: ExportRecord) -> str:
        return "；".join(f"{k}={v}" for k, v in sorted(obj.parameters.items()))


_UNIT_LEVELS = (
    ("university", University),
    ("campus", Campus),
    ("college", College),
    ("grade", Grade),
    ("building", Building),
    ("school_class", SchoolClass),
)
#: Above this many classes the unit menu leaves classes out (use the dashboard's links).
MAX_CLASSES_IN_MENU = 200


@admin.register(LedgerDownload)
class LedgerDownloadAdmin(ViewOnlyAdminMixin, ScopedAdminMixin, admin.ModelAdmin):
    """台账下载: a page of download forms (date, slot, unit in scope) for the ledgers
    the user may export.  Lists nothing itself; the downloads are recorded in the
    export audit."""

    view_roles = ALL_ROLES
    add_roles = change_roles = delete_roles = NO_ROLES

    def get_urls(self):
        from django.urls import path

        info = self.opts.app_label, self.opts.model_name
        return [path("", self.admin_site.admin_view(self.changelist_view), name="{}_{}_changelist".format(*info))]

    def changelist_view(self, request: HttpRequest, extra_context=None) -> TemplateResponse:
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        scope = scope_for(request.user)
        units = []
        for level, model in _UNIT_LEVELS:
            found = scope.units(model)
            if model is SchoolClass and found.count() > MAX_CLASSES_IN_MENU:
                continue
            units.extend((f"{level}:{unit.pk}", f"{model._meta.verbose_name}：{unit}") for unit in found)
        labels = dict(ExportKind.choices)
        urls = {
            ExportKind.STAY: "ledgers:stay",
            ExportKind.ROLLUP: "ledgers:rollup",
            ExportKind.MISSING: "ledgers:missing",
            ExportKind.ABNORMAL: "ledgers:abnormal",
        }
        ledgers = [
            {
                "kind": kind,
                "label": labels[kind],
                "url": reverse(urls[kind]),
                "slot": kind != ExportKind.STAY,
                "background": kind in STUDENT_LIST_KINDS,
            }
            for kind in LEDGER_KINDS
            if may_export_ledger(scope, kind)
        ]
        codes = checkin_slot_codes(user=request.user) or [SlotCode.MORNING]
        context = {
            **self.admin_site.each_context(request),
            "title": _("台账下载"),
            "opts": self.model._meta,
            "ledgers": ledgers,
            "units": units,
            "slots": [(code, SlotCode(code).label) for code in codes],
            "today": timezone.localdate().isoformat(),
            "sync_max_students": sync_max_students(),
            "jobs_url": reverse("admin:reports_ledgerjob_changelist"),
        }
        return TemplateResponse(request, "admin/reports/ledger_download.html", context)


@admin.register(LedgerJob)
class LedgerJobAdmin(ViewOnlyAdminMixin, ScopedAdminMixin, admin.ModelAdmin):
    """后台导出: the ledgers the user asked to be built in the background, their state
    and, once built, the download link.  Everyone sees only their own jobs, whatever
    the role (the file holds what the owner's scope and masking allowed); nothing is
    added, changed or deleted here."""

    view_roles = ALL_ROLES
    add_roles = change_roles = delete_roles = NO_ROLES
    list_display = ["asked_at", "kind", "parameters_shown", "students", "status", "row_count", "file"]
    list_display_links = None  # nothing to open: the file is the link
    list_filter = ["status"]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Owner only, superusers included: the file is the owner's view of the data.
        return self.model.objects.filter(user=request.user).defer("data")

    def changelist_view(self, request: HttpRequest, extra_context=None):
        pending = self.get_queryset(request).filter(status__in=ACTIVE)
        extra = {
            "title": _("我的后台导出"),
            "refresh_seconds": 5 if pending.exists() else None,
            "keep_hours": POLICY.keep_hours,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=extra)

    @admin.display(description=_("申请时间"), ordering="created_at")
    def asked_at(self, obj: LedgerJob) -> str:
        return timezone.localtime(obj.created_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description=_("参数"))
    def parameters_shown(self, obj: LedgerJob) -> str:
        p = obj.parameters
        slot = SlotCode(p["slot"]).label if p.get("slot") in SlotCode.values else _("全天")
        unit = p.get("unit_name") or (p.get("unit") or _("我的全部管理范围"))
        return "；".join((p.get("date", ""), str(slot), str(unit)))

    @admin.display(description=_("文件"))
    def file(self, obj: LedgerJob) -> str:
        if obj.status == JobStatus.DONE:
            url = reverse("ledgers:job_download", args=[obj.pk])
            return format_html('<a class="ledger-job-download" href="{}">{}</a>', url, obj.filename)
        return obj.error if obj.status == JobStatus.FAILED else "—"
