"""Reads for notifications.  The inbox is personal: every selector takes the acting
user and returns only that user's rows, whatever their role."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from notifications.models import GroupRobot, Notification


def notification_list(*, user) -> QuerySet[Notification]:
    """``user``'s notifications, newest first (the (recipient, created_at) index); filter
    further with :class:`notifications.filters.NotificationFilterSet`."""
    return Notification.objects.filter(recipient_id=user.pk).order_by("-created_at", "-id")


def notification_unread_count(*, user) -> int:
    """How many of ``user``'s notifications are unread (partial index on unread rows)."""
    return Notification.objects.filter(recipient_id=user.pk, read_at__isnull=True).count()


def group_robots_for(*, campus_id: int | None = None, college_id: int | None = None) -> QuerySet[GroupRobot]:
    """Active robots whose group should get a digest about this unit: the college's own
    robots, the campus-wide ones of its campus, and the university-wide ones.  Pass only
    ``campus_id`` for a campus digest, neither for a university one."""
    reach = Q(campus__isnull=True, college__isnull=True)
    if campus_id is not None:
        reach |= Q(campus_id=campus_id, college__isnull=True)
    if college_id is not None:
        reach |= Q(college_id=college_id)
    return GroupRobot.objects.filter(reach, active=True).order_by("id")
