"""Admin for the daily check-in: slots, reports, the missing list, excusals and the
contact log — all scoped through :class:`campuses.admin.ScopedAdminMixin`.

Health data (reports, excusals, contacts) is read only by roles in
:data:`campuses.scoping.HEALTH_ROLES`; the missing list shows a class monitor names
and student numbers only.  Every change goes through :mod:`reports.services`:
reports are never edited here (a counsellor reports on a student's behalf through
the API's proxy report), and the "mark as contacted" actions write contact-log
entries through the same service as the API.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from simple_history.admin import SimpleHistoryAdmin

from campuses.admin import ScopedAdminMixin
from campuses.models import Campus, Role
from campuses.scoping import HEALTH_ROLES, scope_for
from reports import selectors, services
from reports.models import CheckinSlot, DailyReport, Excusal, FollowUp, MissingStudent, SlotCode
from students.masking import shown_phone
from students.models import ContactLog, Student

NO_ROLES: frozenset[str] = frozenset()


class UnitListFilter(admin.RelatedFieldListFilter):
    """A unit filter whose choices are the units in the user's scope (read from the
    small unit tables, never by scanning the report table for distinct ids)."""

    def field_choices(self, field, request, model_admin):
        units = scope_for(request.user).units(field.related_model)
        return [(unit.pk, str(unit)) for unit in units]


class SlotCodeFilter(admin.SimpleListFilter):
    """The slot, from the slot codes' fixed choices (never a DISTINCT over the rows);
    ``lookup`` None where the list reads the slot itself."""

    title = _("时段")
    parameter_name = "slot"
    lookup: str | None = "slot__code"

    def lookups(self, request, model_admin):
        return SlotCode.choices

    def queryset(self, request, queryset):
        if self.lookup is None or not self.value():
            return queryset
        return queryset.filter(**{self.lookup: self.value()})


def _past_week() -> list[dt.date]:
    """Today and the six days before it (local dates), the days the date filters offer."""
    today = selectors.local_now().date()
    return [today - dt.timedelta(days=n) for n in range(7)]


class ReportDayFilter(admin.SimpleListFilter):
    """The day of the reports listed: today unless another day — one of the past week,
    or every day — is chosen, as the API's staff list does; a search looks through every
    day.  A day is one equality on the date, so the list's page is read in the order of
    the (date, slot, class) index and stops after a page of rows: at 100,000 students a
    day holds 100,000 reports and 90 days 11.7 million, which no page should count or
    sort whole by default."""

    title = _("日期")
    parameter_name = "day"
    ALL = "all"

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        self.searching = bool(request.GET.get(admin.views.main.SEARCH_VAR))

    def lookups(self, request, model_admin):
        days = [day.isoformat() for day in _past_week()]
        labels = [_("今天"), _("昨天"), *days[2:]]
        return [*zip(days, labels, strict=True), (self.ALL, _("全部日期"))]

    def day(self):
        """The chosen day (None for every day); raises IncorrectLookupParameters for a
        value that is not a date."""
        value = self.value()
        if value == self.ALL or (value is None and self.searching):
            return None
        if value is None:
            return selectors.local_now().date()
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            raise admin.options.IncorrectLookupParameters(value) from exc

    def choices(self, changelist):
        chosen = self.day()
        chosen = self.ALL if chosen is None else chosen.isoformat()
        for value, label in self.lookup_choices:
            yield {
                "selected": value == chosen,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        day = self.day()
        return queryset if day is None else queryset.filter(date=day)


class _CheckinAdmin(ScopedAdminMixin):
    """Scoping for health-related rows of a student: readable by health roles over
    that student, written by the roles that chase students."""

    scope_via = "student__"
    view_roles = HEALTH_ROLES
    add_roles = change_roles = delete_roles = NO_ROLES

    def scope_queryset(self, scope, qs: QuerySet) -> QuerySet:
        return qs.filter(scope.student_q(prefix="student__", roles=HEALTH_ROLES))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Student:
            # Only the students this user chases can be chosen, superusers included
            # through their scope (which is everything).
            kwargs["queryset"] = selectors.students_with_role(request.user, roles=selectors.CHASE_ROLES)
            return admin.ModelAdmin.formfield_for_foreignkey(self, db_field, request, **kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # added and withdrawn through the services, never edited in place

    def has_chase_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, selectors.CHASE_ROLES)

    def _mark_contacted(self, request: HttpRequest, student_ids: list[int]) -> None:
        try:
            entries = services.contacts_mark(actor=request.user, student_ids=student_ids, channel="phone")
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return
        self.message_user(
            request,
            ngettext("已为 %(n)d 名学生登记联系记录。", "已为 %(n)d 名学生登记联系记录。", len(entries))
            % {"n": len(entries)},
            messages.SUCCESS,
        )


@admin.register(CheckinSlot)
class CheckinSlotAdmin(ScopedAdminMixin, admin.ModelAdmin):
    """Slots are set by the campus coordinator or the university admin; everyone with
    students on a campus sees its slots."""

    list_display = ["campus", "code", "opens_at", "due_at", "closes_at", "active"]
    list_filter = [("campus", UnitListFilter), "code", "active"]
    list_select_related = ["campus"]
    add_roles = change_roles = frozenset({Role.UNIVERSITY_ADMIN, Role.CAMPUS_COORDINATOR})
    delete_roles = frozenset({Role.UNIVERSITY_ADMIN})

    def scope_queryset(self, scope, qs: QuerySet) -> QuerySet:
        return qs.filter(
            Q(campus_id__in=scope.units(Campus).values("id")) | Q(campus_id__in=scope.students().values("campus_id"))
        )


@admin.register(DailyReport)
class DailyReportAdmin(_CheckinAdmin, SimpleHistoryAdmin):
    """Reports are read-only here: they change only through the student's app or a
    counsellor's proxy report, so every version stays in the history."""

    list_display = [
        "date",
        "slot",
        "student",
        "school_class",
        "temperature",
        "health_status",
        "abnormal",
        "suspected_bot",
        "follow_up",
        "source",
        "late",
        "submitted_at",
    ]
    list_select_related = ["student", "slot__campus", "school_class"]
    # The (date, slot, class) index's order, the student last: a day's first page is
    # read without sorting the day (the unique (student, date, slot) makes it total).
    ordering = ["-date", "slot_id", "school_class_id", "student_id"]
    list_filter = [
        ReportDayFilter,
        SlotCodeFilter,
        ("campus", UnitListFilter),
        ("college", UnitListFilter),
        ("grade", UnitListFilter),
        ("school_class", UnitListFilter),
        "abnormal",
        "suspected_bot",
        "follow_up",
        "source",
        "late",
    ]
    search_fields = ["=student__student_number", "student__name"]
    show_full_result_count = False
    actions = ["mark_contacted", "close_follow_ups"]

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description=_("标记所选学生已联系"), permissions=["chase"])
    def mark_contacted(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._mark_contacted(request, list(queryset.order_by().values_list("student_id", flat=True).distinct()))

    @admin.action(description=_("关闭所选报告的跟进(已电话联系)"), permissions=["chase"])
    def close_follow_ups(self, request: HttpRequest, queryset: QuerySet) -> None:
        closed = 0
        for report_id in queryset.filter(follow_up=FollowUp.OPEN).values_list("id", flat=True):
            try:
                services.report_follow_up_close(actor=request.user, report_id=report_id)
            except ValidationError:
                continue  # not one of this user's students to chase
            closed += 1
        self.message_user(request, _("已关闭 %(n)d 条跟进。") % {"n": closed}, messages.SUCCESS)


class MissingDateFilter(admin.SimpleListFilter):
    """The date of the missing list: today by default, or one of the past week."""

    title = _("日期")
    parameter_name = "date"

    def lookups(self, request, model_admin):
        return [(day.isoformat(), str(day)) for day in _past_week()]

    def queryset(self, request, queryset):
        return queryset  # read by MissingStudentAdmin.get_queryset


class MissingSlotFilter(SlotCodeFilter):
    lookup = None  # read by MissingStudentAdmin.get_queryset


class MissingChangeList(ChangeList):
    """The missing list's change list: the page's rows get their counsellors and last
    contacts (:func:`reports.selectors.missing_details`) where the user sees details."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        if selectors.missing_list_detailed(request.user):
            on, _slot = self.model_admin._params(request)
            self.result_list = selectors.missing_details(self.result_list, on=on)


@admin.register(MissingStudent)
class MissingStudentAdmin(_CheckinAdmin, admin.ModelAdmin):
    """未报名单: the students of the user's scope who have not reported for the chosen
    date and slot (default: today, morning), with an action to mark them contacted."""

    view_roles = HEALTH_ROLES | selectors.NAMES_ONLY_ROLES
    # The date and slot are the list's own (not filters of a wider list): Django's "of N
    # in all" would count the same anti-join twice — 245 ms each for the university's
    # 100,000 students.
    show_full_result_count = False
    list_filter = [
        MissingDateFilter,
        MissingSlotFilter,
        ("college", UnitListFilter),
        ("grade", UnitListFilter),
        ("school_class", UnitListFilter),
        ("building", UnitListFilter),
    ]
    search_fields = ["=student_number", "name"]
    list_per_page = 100
    actions = ["mark_contacted"]
    ordering = ["school_class_id", "student_number"]

    DETAILED = ["student_number", "name", "school_class", "phone_shown", "counsellor", "last_contact"]
    NAMES_ONLY = ["student_number", "name", "school_class"]

    def _params(self, request: HttpRequest) -> tuple[dt.date, str]:
        try:
            on = dt.date.fromisoformat(request.GET.get("date", ""))
        except ValueError:
            on = selectors.local_now().date()
        slot = request.GET.get("slot")
        return on, slot if slot in SlotCode.values else SlotCode.MORNING

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        on, slot = self._params(request)
        students, _detailed = selectors.report_missing(
            user=request.user, on=on, slot_code=slot, students=MissingStudent.objects.all()
        )
        return students

    def get_list_display(self, request: HttpRequest):
        return self.DETAILED if selectors.missing_list_detailed(request.user) else self.NAMES_ONLY

    def get_changelist(self, request: HttpRequest, **kwargs):
        return MissingChangeList

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description=_("手机"))
    def phone_shown(self, obj: Student) -> str:
        return shown_phone(obj, bool(getattr(obj, "pii_phone", False)))

    @admin.display(description=_("负责辅导员"))
    def counsellor(self, obj: Student) -> str:
        return obj.counsellor_name or "-"

    @admin.display(description=_("最近联系"))
    def last_contact(self, obj: Student) -> str:
        at = obj.last_contact_at
        if at is None:
            return "-"
        outcome = ContactLog.Outcome(obj.last_contact_outcome).label
        return f"{timezone.localtime(at):%m-%d %H:%M} {outcome}"

    @admin.action(description=_("标记所选学生已联系"), permissions=["chase"])
    def mark_contacted(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._mark_contacted(request, list(queryset.values_list("id", flat=True)))


@admin.register(Excusal)
class ExcusalAdmin(_CheckinAdmin, SimpleHistoryAdmin):
    """Excusals are added and withdrawn (never edited) by the counsellors who chase
    the students; withdrawal stays in the history."""

    list_display = ["student", "reason", "starts_on", "ends_on", "note", "created_by", "created_at"]
    list_select_related = ["student", "created_by"]
    list_filter = ["reason", "starts_on", ("student__college", UnitListFilter), ("student__grade", UnitListFilter)]
    search_fields = ["=student__student_number", "student__name"]
    autocomplete_fields = ["student"]
    fields = ["student", "reason", "note", "starts_on", "ends_on"]
    add_roles = delete_roles = selectors.CHASE_ROLES

    def save_model(self, request, obj: Excusal, form, change) -> None:
        created = services.excusal_create(
            actor=request.user,
            student_id=obj.student_id,
            reason=obj.reason,
            starts_on=obj.starts_on,
            ends_on=obj.ends_on,
            note=obj.note,
        )
        obj.pk, obj.created_by, obj.created_at = created.pk, created.created_by, created.created_at

    def delete_model(self, request, obj: Excusal) -> None:
        services.excusal_delete(actor=request.user, excusal_id=obj.pk)

    def delete_queryset(self, request, queryset: QuerySet) -> None:
        for excusal_id in queryset.values_list("id", flat=True):
            services.excusal_delete(actor=request.user, excusal_id=excusal_id)


class ContactLogForm(forms.ModelForm):
    class Meta:
        model = ContactLog
        fields = ["student", "contacted_at", "channel", "outcome", "note"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("contacted_at"):
            services.contact_time_check(cleaned["contacted_at"])  # the service's rule, as a form error
        return cleaned


@admin.register(ContactLog)
class ContactLogAdmin(_CheckinAdmin, admin.ModelAdmin):
    """The contact log (联系记录): appended by the counsellors who chase the students."""

    list_display = ["contacted_at", "student", "channel", "outcome", "note", "contacted_by"]
    list_select_related = ["student", "contacted_by"]
    list_filter = [
        "contacted_at",
        "channel",
        "outcome",
        ("student__college", UnitListFilter),
        ("student__grade", UnitListFilter),
        ("student__school_class", UnitListFilter),
    ]
    search_fields = ["=student__student_number", "student__name"]
    autocomplete_fields = ["student"]
    form = ContactLogForm
    add_roles = selectors.CHASE_ROLES
    show_full_result_count = False

    def get_changeform_initial_data(self, request):
        return {"contacted_at": selectors.local_now()}

    def save_model(self, request, obj: ContactLog, form, change) -> None:
        created = services.contact_log_create(
            actor=request.user,
            student_id=obj.student_id,
            channel=obj.channel,
            outcome=obj.outcome,
            note=obj.note,
            contacted_at=obj.contacted_at,
        )
        obj.pk, obj.contacted_by, obj.created_at = created.pk, created.contacted_by, created.created_at


# The roll-up, sign-off and reminder-ladder admin (issue 4) and the cluster alerts,
# export audit and ledger download page (issue 5) live in their own modules.
from reports import admin_alerts, admin_jobs  # noqa: E402, F401
