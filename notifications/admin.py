"""Admin for notifications, the delivery log and group robots.

- 通知: a university admin (and a superuser) sees everyone's; any other staff member
  sees only their own inbox.  Read-only: notifications are written by services.
- 发送记录: the outbox and its outcomes, for the university admin only (deliveries have
  no student to scope by).  Failed and dead deliveries are filterable and can be put
  back in the queue with "立即重试"; the next dispatch run sends them.
- 群机器人: configured by the university admin; the webhook token and the signing
  secret are credentials and show masked in the list.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from campuses.admin import ALL_ROLES, ScopedAdminMixin, ScopedRelatedFilter
from campuses.models import Campus, College, Role
from campuses.scoping import Scope
from notifications.models import Delivery, DeliveryStatus, GroupRobot, Notification
from notifications.services import deliveries_retry

UNIVERSITY_ADMIN = frozenset({Role.UNIVERSITY_ADMIN})
NOBODY: frozenset[str] = frozenset()


@admin.register(Notification)
class NotificationAdmin(ScopedAdminMixin, admin.ModelAdmin):
    view_roles = ALL_ROLES
    add_roles = change_roles = delete_roles = NOBODY

    list_display = ["title", "kind", "recipient", "created_at", "delivered_at", "read_at"]
    list_filter = ["kind", ("read_at", admin.EmptyFieldListFilter), "created_at"]
    list_select_related = ["recipient"]
    search_fields = ["title", "recipient__username", "dedupe_key"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # COUNT(*) over millions of rows on every page

    def scope_queryset(self, scope: Scope, qs: QuerySet) -> QuerySet:
        if scope.has_role(Role.UNIVERSITY_ADMIN):
            return qs
        return qs.filter(recipient_id=scope.user_id)


def _short(text: str, length: int = 80) -> str:
    return text if len(text) <= length else f"{text[: length - 1]}…"


@admin.register(Delivery)
class DeliveryAdmin(ScopedAdminMixin, admin.ModelAdmin):
    view_roles = UNIVERSITY_ADMIN
    add_roles = change_roles = delete_roles = NOBODY

    list_display = [
        "id",
        "channel",
        "status",
        "target",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "error",
        "created_at",
    ]
    list_filter = ["status", "channel", "created_at"]
    list_select_related = ["user", "robot"]
    search_fields = ["dedupe_key", "address", "user__username", "robot__name"]
    readonly_fields = [f.name for f in Delivery._meta.fields if f.name != "claim"]
    exclude = ["claim"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["retry_now"]

    def scope_queryset(self, scope: Scope, qs: QuerySet) -> QuerySet:
        return qs if scope.has_role(Role.UNIVERSITY_ADMIN) else qs.none()

    @admin.display(description=_("目标"))
    def target(self, obj: Delivery) -> str:
        return obj.target_display

    @admin.display(description=_("最近错误"))
    def error(self, obj: Delivery) -> str:
        return _short(obj.last_error)

    @admin.action(description=_("立即重试"))
    def retry_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        ids = list(
            queryset.filter(status__in=[DeliveryStatus.FAILED, DeliveryStatus.DEAD]).values_list("id", flat=True)
        )
        count = deliveries_retry(delivery_ids=ids)
        skipped = queryset.count() - count
        self.message_user(
            request,
            ngettext("%(count)d 条发送记录已重新排队。", "%(count)d 条发送记录已重新排队。", count) % {"count": count},
            messages.SUCCESS,
        )
        if skipped:
            self.message_user(request, _("%(count)d 条不是失败状态，未重试。") % {"count": skipped}, messages.WARNING)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, UNIVERSITY_ADMIN)

    retry_now.allowed_permissions = ("retry",)


def _mask(secret: str) -> str:
    return f"{secret[:4]}…{secret[-2:]}" if len(secret) > 8 else "…"


@admin.register(GroupRobot)
class GroupRobotAdmin(ScopedAdminMixin, admin.ModelAdmin):
    view_roles = add_roles = change_roles = delete_roles = UNIVERSITY_ADMIN

    list_display = ["name", "kind", "reach", "webhook_masked", "has_secret", "active"]
    list_filter = ["kind", "active", ("campus", ScopedRelatedFilter)]
    list_select_related = ["campus", "college"]
    search_fields = ["name", "campus__name", "college__name"]
    autocomplete_fields = ["campus", "college"]

    def scope_queryset(self, scope: Scope, qs: QuerySet) -> QuerySet:
        # University-wide robots and those of units in scope (a university admin: all).
        return qs.filter(
            Q(campus__in=scope.units(Campus).values("pk"))
            | Q(college__in=scope.units(College).values("pk"))
            | Q(campus__isnull=True, college__isnull=True)
        )

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "webhook_url":
            kwargs["assume_scheme"] = "https"  # robot webhooks are HTTPS only
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description=_("范围"))
    def reach(self, obj: GroupRobot) -> str:
        return str(obj.college or obj.campus or _("全校"))

    @admin.display(description=_("Webhook 地址"))
    def webhook_masked(self, obj: GroupRobot) -> str:
        base, _sep, query = obj.webhook_url.partition("?")
        return f"{base}?{_mask(query)}" if query else _mask(base)

    @admin.display(description=_("已设加签"), boolean=True)
    def has_secret(self, obj: GroupRobot) -> bool:
        return bool(obj.secret)
