"""Filters for the notification inbox (shared by the API and any page that lists it)."""

from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters

from notifications.models import Notification, NotificationKind


class NotificationFilterSet(filters.FilterSet):
    """``?unread=true`` for unread only, ``?kind=reminder`` for one kind."""

    unread = filters.BooleanFilter(field_name="read_at", lookup_expr="isnull", label=_("仅未读"))
    kind = filters.ChoiceFilter(choices=NotificationKind.choices, label=_("类型"))

    class Meta:
        model = Notification
        fields = ["unread", "kind"]
