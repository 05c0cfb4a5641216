"""Admin for the jobs of issue 4: the roll-up snapshots and runs, the sign-offs, the
reminder ladder and its runs — all scoped through :func:`campuses.scoping.scope_for`.

Snapshots and sign-offs name their unit as (level, unit_id); a user sees a row when
that unit is one of the units they may see.  Snapshots and runs are written by the
jobs only (read-only here); sign-offs change through their services.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from campuses.admin import ScopedAdminMixin
from campuses.models import Campus, Role
from campuses.scoping import Scope
from reports.admin import SlotCodeFilter
from reports.reminder_models import ReminderRun, ReminderStep
from reports.rollup_models import FIGURES, RollupRun, RollupSnapshot, SignOff
from reports.signoff import LEVEL_MODELS, SignOffError, signoff_reopen

LADDER_ROLES = frozenset({Role.UNIVERSITY_ADMIN, Role.CAMPUS_COORDINATOR})


def level_unit_q(scope: Scope) -> Q:
    """Rows naming a (level, unit_id) the scope may see.  The unit ids are read first
    (the unit tables are small): as lists the (level, unit_id) pairs are index lookups,
    where subqueries OR-ed together made PostgreSQL scan every snapshot (1.7 million
    rows for a year at 100,000 students) for a counsellor's few thousand."""
    q = Q(pk__in=[])
    for level, model in LEVEL_MODELS.items():
        ids = list(scope.units(model).values_list("pk", flat=True))
        if ids:
            q |= Q(level=level, unit_id__in=ids)
    return q


class _LevelUnitAdmin(ScopedAdminMixin, admin.ModelAdmin):
    def scope_queryset(self, scope: Scope, qs: QuerySet) -> QuerySet:
        return qs if scope.everything else qs.filter(level_unit_q(scope))


class SnapshotSlotFilter(SlotCodeFilter):
    """A snapshot's slot code (a year of snapshots is 1.7 million rows at 100,000
    students: no values filter's DISTINCT over them)."""

    parameter_name = lookup = "slot_code"


@admin.register(RollupSnapshot)
class RollupSnapshotAdmin(_LevelUnitAdmin):
    list_display = ["date", "slot_code", "level", "unit_name", *FIGURES[:8], "completion_display"]
    list_filter = ["date", SnapshotSlotFilter, "level"]
    search_fields = ["unit_name"]
    # The latest day first; the unique (date, slot, level, unit) index gives the days in
    # order, so only the first page's day is sorted.  No date hierarchy: its links are a
    # DISTINCT over every snapshot in scope on each page.
    ordering = ["-date", "slot_code", "level", "unit_name", "unit_id"]
    show_full_result_count = False
    change_roles = add_roles = delete_roles = frozenset()

    @admin.display(description=_("完成率"))
    def completion_display(self, obj: RollupSnapshot) -> str:
        return "-" if obj.completion is None else f"{obj.completion}%"


@admin.register(SignOff)
class SignOffAdmin(_LevelUnitAdmin):
    list_display = ["date", "level", "unit_id", "state", "confirmed_by", "confirmed_at", "reopen_reason"]
    list_filter = ["state", "level", "date"]
    list_select_related = ["confirmed_by", "reopened_by"]
    readonly_fields = [f.name for f in SignOff._meta.fields]
    change_roles = add_roles = delete_roles = frozenset()
    actions = ["reopen_selected"]

    @admin.action(description=_("退回所选确认（原因：管理员退回）"))
    def reopen_selected(self, request, queryset):
        done = 0
        for signoff in queryset:
            try:
                signoff_reopen(
                    user=request.user,
                    on=signoff.date,
                    level=signoff.level,
                    unit_id=signoff.unit_id,
                    reason=str(_("管理员在后台退回")),
                )
                done += 1
            except SignOffError as err:
                self.message_user(request, f"{signoff}: {err.message}", messages.WARNING)
        if done:
            self.message_user(request, _("已退回 %(n)d 条确认。") % {"n": done})

    def get_actions(self, request):
        # the action's own permission: reopening is checked per row by the service
        actions = super().get_actions(request)
        if not self._allowed(request, frozenset({Role.COLLEGE_ADMIN, Role.CAMPUS_COORDINATOR, Role.UNIVERSITY_ADMIN})):
            actions.pop("reopen_selected", None)
        return actions


@admin.register(RollupRun)
class RollupRunAdmin(ScopedAdminMixin, admin.ModelAdmin):
    list_display = ["date", "slot_code", "started_at", "finished_at", "units", "seconds"]
    list_filter = ["slot_code"]
    view_roles = frozenset({Role.UNIVERSITY_ADMIN})
    change_roles = add_roles = delete_roles = frozenset()

    def scope_queryset(self, scope: Scope, qs: QuerySet) -> QuerySet:
        return qs if scope.has_role(Role.UNIVERSITY_ADMIN) else qs.none()


class _CampusLadderAdmin(ScopedAdminMixin, admin.ModelAdmin):
    campus_path = "slot__campus"
    view_roles = LADDER_ROLES
    add_roles = change_roles = delete_roles = LADDER_ROLES

    def scope_queryset(self, scope: Scope, qs: QuerySet) -> QuerySet:
        return qs.filter(**{f"{self.campus_path}__in": scope.units(Campus).values("pk")})


@admin.register(ReminderStep)
class ReminderStepAdmin(_CampusLadderAdmin):
    list_display = ["slot", "kind", "anchor", "offset_minutes", "channels", "active"]
    list_filter = ["slot__campus", "slot__code", "kind", "active"]
    list_select_related = ["slot__campus"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "slot" and not request.user.is_superuser:
            from reports.models import CheckinSlot

            kwargs["queryset"] = CheckinSlot.objects.filter(campus__in=self.scope(request).units(Campus))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(ReminderRun)
class ReminderRunAdmin(_CampusLadderAdmin):
    campus_path = "step__slot__campus"
    list_display = ["date", "step", "claimed_at", "finished_at", "recipients", "skipped_reason"]
    list_filter = ["date", "step__kind"]
    list_select_related = ["step__slot__campus"]
    add_roles = change_roles = delete_roles = frozenset()
