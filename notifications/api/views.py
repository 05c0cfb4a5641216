"""The inbox API (``/api/v1/notifications/``): my notifications, newest first; the
unread count; mark one or all read.  Only the caller's own notifications exist here:
another person's id answers 404, exactly like an id that does not exist."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from notifications.api.serializers import NotificationSerializer, ReadAllResultSerializer, UnreadCountSerializer
from notifications.filters import NotificationFilterSet
from notifications.models import Notification
from notifications.selectors import notification_list, notification_unread_count
from notifications.services import notification_mark_read, notifications_mark_all_read


@extend_schema(tags=["notifications"])
class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilterSet
    # Digits only, and few enough to fit a bigint: a huge id is a 404, not a database error.
    lookup_value_regex = r"[0-9]{1,18}"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Notification.objects.none()
        return notification_list(user=self.request.user)

    @extend_schema(responses=UnreadCountSerializer, filters=False)
    @action(detail=False, methods=["get"], url_path="unread-count", filterset_class=None, pagination_class=None)
    def unread_count(self, request: Request) -> Response:
        return Response({"unread": notification_unread_count(user=request.user)})

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def read(self, request: Request, pk: str) -> Response:
        try:
            notification = notification_mark_read(user=request.user, notification_id=int(pk))
        except Notification.DoesNotExist:
            raise NotFound from None
        return Response(NotificationSerializer(notification).data)

    @extend_schema(request=None, responses=ReadAllResultSerializer, filters=False)
    @action(detail=False, methods=["post"], url_path="read-all", filterset_class=None, pagination_class=None)
    def read_all(self, request: Request) -> Response:
        return Response({"updated": notifications_mark_all_read(user=request.user)})
