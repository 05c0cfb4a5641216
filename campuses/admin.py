"""Admin for the organisation tree and duties, and the scoped-admin mixin every
Tongxin ModelAdmin uses.

Rule: for anyone but a superuser, every changelist, change form, autocomplete,
list-filter choice and foreign-key choice is filtered through
:func:`campuses.scoping.scope_for`.  Permissions come from the roles a user holds
(see ``*_roles`` on each admin), not from Django's per-model permission table, so
that a new duty in the roster is all it takes to give a counsellor their pages.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from campuses.models import (
    UNIT_FIELDS,
    Assignment,
    Building,
    Campus,
    College,
    Grade,
    Role,
    Room,
    SchoolClass,
    University,
)
from campuses.scoping import Scope, scope_for

ALL_ROLES = frozenset(Role.values)
UNIT_MODELS = (University, Campus, College, Grade, SchoolClass, Building, Room)


class ScopedAdminMixin:
    """Scope a ModelAdmin to what the acting user may see.

    ``scope_via``: ``"unit"`` (the model is a unit of the tree), ``"student"`` (the model
    is Student), or a lookup to a student (``"student"`` on a tag → ``scope_via =
    "student__"``).  Subclasses set the roles allowed to view/add/change/delete.
    """

    scope_via: str = "unit"
    view_roles: frozenset[str] = ALL_ROLES
    add_roles: frozenset[str] = frozenset({Role.UNIVERSITY_ADMIN})
    change_roles: frozenset[str] = frozenset({Role.UNIVERSITY_ADMIN})
    delete_roles: frozenset[str] = frozenset({Role.UNIVERSITY_ADMIN})

    # -- scoping -----------------------------------------------------------
    def scope(self, request: HttpRequest) -> Scope:
        return scope_for(request.user)

    def scope_queryset(self, scope: Scope, qs: QuerySet) -> QuerySet:
        if self.scope_via == "unit":
            return scope.units(self.model, qs)
        if self.scope_via == "student":
            return scope.students(qs)
        return qs.filter(scope.student_q(prefix=self.scope_via))

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return self.scope_queryset(self.scope(request), qs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            scoped = scoped_choices(self.scope(request), db_field.related_model)
            if scoped is not None:
                kwargs["queryset"] = scoped
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # -- permissions -------------------------------------------------------
    def _allowed(self, request: HttpRequest, roles: frozenset[str]) -> bool:
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        if user.is_superuser:
            return True
        return self.scope(request).has_role(*roles)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, self.view_roles)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._allowed(request, self.view_roles | self.change_roles)

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return self._allowed(request, self.add_roles)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._allowed(request, self.change_roles)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._allowed(request, self.delete_roles)


def scoped_choices(scope: Scope, model) -> QuerySet | None:
    """Foreign-key choices of ``model`` for this scope, or None for unscoped models."""
    from students.models import Student

    if model is Room:
        return scope.assignable_rooms()
    if model in UNIT_MODELS:
        return scope.units(model)
    if model is Student:
        return scope.students()
    return None


class ScopedRelatedFilter(admin.RelatedOnlyFieldListFilter):
    """A list filter whose choices are the related units present in the scoped
    changelist — never a unit outside the user's scope."""


class UnitAdmin(ScopedAdminMixin, admin.ModelAdmin):
    search_fields = ["name", "code"]


@admin.register(University)
class UniversityAdmin(UnitAdmin):
    list_display = ["code", "name"]


@admin.register(Campus)
class CampusAdmin(UnitAdmin):
    list_display = ["code", "name", "university"]
    list_select_related = ["university"]


@admin.register(College)
class CollegeAdmin(UnitAdmin):
    list_display = ["code", "name", "campus"]
    list_filter = [("campus", ScopedRelatedFilter)]
    list_select_related = ["campus"]
    search_fields = ["name", "code", "campus__name"]
    add_roles = change_roles = frozenset({Role.UNIVERSITY_ADMIN, Role.CAMPUS_COORDINATOR})


@admin.register(Grade)
class GradeAdmin(UnitAdmin):
    list_display = ["name", "year", "college"]
    list_filter = [("college", ScopedRelatedFilter), "year"]
    list_select_related = ["college"]
    search_fields = ["name", "college__name"]
    autocomplete_fields = ["college"]
    add_roles = change_roles = frozenset({Role.UNIVERSITY_ADMIN, Role.CAMPUS_COORDINATOR, Role.COLLEGE_ADMIN})


@admin.register(SchoolClass)
class SchoolClassAdmin(UnitAdmin):
    list_display = ["code", "name", "grade", "college_name"]
    list_filter = [("grade__college", ScopedRelatedFilter), "grade__year"]
    list_select_related = ["grade__college"]
    search_fields = ["name", "code", "grade__college__name"]
    autocomplete_fields = ["grade"]
    add_roles = change_roles = frozenset({Role.UNIVERSITY_ADMIN, Role.CAMPUS_COORDINATOR, Role.COLLEGE_ADMIN})

    @admin.display(description=_("学院"), ordering="grade__college__name")
    def college_name(self, obj: SchoolClass) -> str:
        return obj.grade.college.name


@admin.register(Building)
class BuildingAdmin(UnitAdmin):
    list_display = ["code", "name", "campus"]
    list_filter = [("campus", ScopedRelatedFilter)]
    list_select_related = ["campus"]
    add_roles = change_roles = frozenset({Role.UNIVERSITY_ADMIN, Role.CAMPUS_COORDINATOR, Role.LOGISTICS_OFFICER})


@admin.register(Room)
class RoomAdmin(UnitAdmin):
    list_display = ["number", "building", "beds"]
    list_filter = [("building", ScopedRelatedFilter)]
    list_select_related = ["building"]
    search_fields = ["number", "building__name"]
    autocomplete_fields = ["building"]
    add_roles = change_roles = frozenset({Role.UNIVERSITY_ADMIN, Role.CAMPUS_COORDINATOR, Role.LOGISTICS_OFFICER})

    def get_search_results(self, request, queryset, search_term):
        # Autocomplete for a student's room offers the campus's rooms the user may assign.
        if request.path.endswith("/autocomplete/") and not request.user.is_superuser:
            queryset = self.scope(request).assignable_rooms(Room.objects.select_related("building"))
        return super().get_search_results(request, queryset, search_term)


@admin.register(Assignment)
class AssignmentAdmin(ScopedAdminMixin, SimpleHistoryAdmin):
    """Duties are granted by the university admin; everyone with a duty can see the
    duties held inside their own scope (who is the counsellor of this grade?)."""

    list_display = ["user", "role", "unit_display", "valid_from", "valid_to"]
    list_filter = ["role", "valid_to"]
    list_select_related = ["user", *UNIT_FIELDS]
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    autocomplete_fields = ["user", *UNIT_FIELDS]
    view_roles = frozenset(
        {Role.UNIVERSITY_ADMIN, Role.CAMPUS_COORDINATOR, Role.COLLEGE_ADMIN, Role.COUNSELLOR, Role.DUTY_COUNSELLOR}
    )

    def scope_queryset(self, scope: Scope, qs: QuerySet) -> QuerySet:
        visible = Q(pk__in=[])
        for name, model in zip(UNIT_FIELDS, UNIT_MODELS, strict=True):
            visible |= Q(**{f"{name}__in": scope.units(model).values("pk")})
        return qs.filter(visible)

    @admin.display(description=_("单位"))
    def unit_display(self, obj: Assignment) -> str:
        return str(obj.unit)


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Accounts: the university admin manages staff and student logins, but can neither
    see nor touch superusers nor hand out Django permissions (duties are granted as
    assignments)."""

    inlines = []

    def _manager(self, request: HttpRequest) -> bool:
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        return user.is_superuser or scope_for(user).has_role(Role.UNIVERSITY_ADMIN)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(is_superuser=False)

    def get_fieldsets(self, request: HttpRequest, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser or obj is None:
            return fieldsets
        limited = []
        for title, opts in fieldsets:
            fields = [f for f in opts["fields"] if f not in {"is_superuser", "groups", "user_permissions"}]
            limited.append((title, {**opts, "fields": fields}))
        return limited

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._manager(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._manager(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._manager(request)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._manager(request)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser
