"""Admin for students and key-attention tags: scoped, masked, with history.

ID numbers and phones show in full only where a role reaching that student needs
them (:meth:`campuses.scoping.Scope.annotate_pii`); everywhere else — list, form,
history — they are masked.  Search is by 学号 and name only, so a masked phone
cannot be guessed by searching for it.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from campuses.admin import ScopedAdminMixin, ScopedRelatedFilter
from campuses.models import Role
from students.admin_roster import RosterAdminMixin
from students.masking import mask_phone, shown_id_number, shown_phone
from students.models import KeyAttentionTag, Student

STUDENT_EDITORS = frozenset({Role.UNIVERSITY_ADMIN, Role.COLLEGE_ADMIN, Role.COUNSELLOR, Role.DUTY_COUNSELLOR})


class KeyAttentionTagInline(admin.TabularInline):
    model = KeyAttentionTag
    extra = 0
    fields = ["tag", "reason", "since", "until", "follow_up_every_days"]


@admin.register(Student)
class StudentAdmin(RosterAdminMixin, ScopedAdminMixin, SimpleHistoryAdmin):
    scope_via = "student"
    add_roles = frozenset({Role.UNIVERSITY_ADMIN, Role.COLLEGE_ADMIN})
    change_roles = STUDENT_EDITORS
    delete_roles = frozenset({Role.UNIVERSITY_ADMIN})

    list_display = [
        "student_number",
        "name",
        "gender",
        "college",
        "school_class",
        "dorm",
        "phone_shown",
        "id_number_shown",
        "whereabouts",
        "enrolment_status",
    ]
    list_select_related = ["college", "school_class", "room__building"]
    list_filter = [
        ("campus", ScopedRelatedFilter),
        ("college", ScopedRelatedFilter),
        ("grade", ScopedRelatedFilter),
        ("building", ScopedRelatedFilter),
        "whereabouts",
        "enrolment_status",
        "gender",
    ]
    search_fields = ["=student_number", "name"]
    autocomplete_fields = ["school_class", "room"]
    inlines = [KeyAttentionTagInline]
    show_full_result_count = False
    list_per_page = 50
    fieldsets = [
        (None, {"fields": ["student_number", "name", "gender", "enrolment_status", "user"]}),
        (_("所在单位"), {"fields": ["school_class", "room", "bed"]}),
        (_("联系方式"), {"fields": ["phone", "id_number", "guardian_name", "guardian_phone"]}),
        (_("生源地与去向"), {"fields": ["hometown_province", "hometown_city", "whereabouts"]}),
    ]
    raw_id_fields = ["user"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        return self.scope(request).annotate_pii(qs)

    # -- masking -----------------------------------------------------------
    @admin.display(description=_("手机"))
    def phone_shown(self, obj: Student) -> str:
        return shown_phone(obj, bool(getattr(obj, "pii_phone", False)))

    @admin.display(description=_("身份证号"))
    def id_number_shown(self, obj: Student) -> str:
        return shown_id_number(obj, bool(getattr(obj, "pii_id", False)))

    @admin.display(description=_("宿舍"))
    def dorm(self, obj: Student) -> str:
        if not obj.room_id:
            return "-"
        return f"{obj.room.building.name} {obj.room.number}-{obj.bed}" if obj.bed else str(obj.room)

    def _masked_fields(self, obj: Student | None) -> set[str]:
        if obj is None:
            return set()
        hidden = set()
        if not getattr(obj, "pii_phone", False):
            hidden |= {"phone", "guardian_phone"}
        if not getattr(obj, "pii_id", False):
            hidden.add("id_number")
        return hidden

    def get_fieldsets(self, request: HttpRequest, obj: Student | None = None):
        hidden = self._masked_fields(obj)
        if not hidden:
            return super().get_fieldsets(request, obj)
        swap = {"phone": "phone_shown", "id_number": "id_number_shown", "guardian_phone": "guardian_phone_shown"}
        return [
            (title, {**opts, "fields": [swap[f] if f in hidden else f for f in opts["fields"]]})
            for title, opts in super().get_fieldsets(request, obj)
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Student | None = None):
        fields = list(super().get_readonly_fields(request, obj))
        hidden = self._masked_fields(obj)
        if "phone" in hidden:
            fields += ["phone_shown", "guardian_phone_shown"]
        if "id_number" in hidden:
            fields.append("id_number_shown")
        if not request.user.is_superuser:
            fields.append("user")  # login accounts are linked by import/seed, not by hand
        return fields

    @admin.display(description=_("监护人电话"))
    def guardian_phone_shown(self, obj: Student) -> str:
        return mask_phone(obj.guardian_phone)

    # -- history -----------------------------------------------------------
    def history_view(self, request: HttpRequest, object_id: str, extra_context=None):
        """History shows old values in full, so only those who may see the student's
        phone and ID number in full may open it."""
        obj = self.get_object(request, object_id)
        if obj is None or not (request.user.is_superuser or (obj.pii_phone and obj.pii_id)):
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)


@admin.register(KeyAttentionTag)
class KeyAttentionTagAdmin(ScopedAdminMixin, SimpleHistoryAdmin):
    scope_via = "student__"
    add_roles = change_roles = STUDENT_EDITORS | {Role.PSYCHOLOGICAL_COUNSELLOR}
    delete_roles = STUDENT_EDITORS
    list_display = ["student", "tag", "reason", "since", "until"]
    list_filter = ["tag", ("student__college", ScopedRelatedFilter), "since"]
    list_select_related = ["student"]
    search_fields = ["=student__student_number", "student__name", "reason"]
    autocomplete_fields = ["student"]
    date_hierarchy = "since"
