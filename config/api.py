"""The REST API, version 1 (``/api/v1/``): authentication, ``me/`` and each app's routes.

These paths are a contract the mobile teams build against (DESIGN.md, "Interfaces").
Authentication: JWT bearer tokens from ``auth/token/`` (short-lived access, rotating
refresh with a blacklist) for the app, the admin's session for the web.  Logins are
guarded by django-axes on the username + IP pair (never the IP alone: campus NAT) and
a locked-out login answers 429 ``locked_out``, not a plain 401.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.urls import include, path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from campuses.models import UNIT_FIELDS, Assignment
from config.throttles import LoginRateThrottle, ScopedThrottle
from reports.api import views as reports
from reports.api.rollups import ReopenView, RollupView, SignOffView
from students.models import Student


# ---------------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------------
class LockedOut(exceptions.APIException):
    status_code = 429
    default_detail = _("登录失败次数过多，账号已暂时锁定，请稍后再试。")
    default_code = "locked_out"


class TokenObtainInputSerializer(TokenObtainPairSerializer):
    """simplejwt's input with the username as long as a username can be (150): a longer
    one is a 400 ``max_length`` before it reaches django-axes, whose failure log stores
    at most 255 characters (PostgreSQL refused the row: a 500 found by schemathesis)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields[self.username_field] = serializers.CharField(
            write_only=True, max_length=get_user_model()._meta.get_field("username").max_length
        )


class TokenObtainView(TokenObtainPairView):
    """Username + password → access and refresh tokens; 429 ``locked_out`` once
    django-axes has locked this username from this address."""

    serializer_class = TokenObtainInputSerializer
    throttle_classes = [LoginRateThrottle]

    @extend_schema(summary="Obtain a token pair", description="429 `locked_out` after too many failures.")
    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except exceptions.AuthenticationFailed:
            # axes flags the request it saw (DRF's request object) when it locks or refuses.
            if getattr(request, "axes_locked_out", False):
                raise LockedOut() from None
            raise


class TokenRotateView(TokenRefreshView):
    """A refresh token → a new access token and a new refresh token; the old refresh
    token is blacklisted."""

    throttle_classes = [ScopedThrottle]
    throttle_scope = "login"


# ---------------------------------------------------------------------------
# me/
# ---------------------------------------------------------------------------
class UnitRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class OwnStudentSerializer(serializers.ModelSerializer):
    """A student's own record, in full (it is their own data)."""

    campus = UnitRefSerializer()
    college = UnitRefSerializer()
    grade = UnitRefSerializer()
    school_class = UnitRefSerializer()
    building = UnitRefSerializer(allow_null=True)
    room = serializers.CharField(source="room.number", allow_null=True, default=None)

    class Meta:
        model = Student
        fields = [
            "id",
            "student_number",
            "name",
            "gender",
            "campus",
            "college",
            "grade",
            "school_class",
            "building",
            "room",
            "bed",
            "phone",
            "id_number",
            "hometown_province",
            "hometown_city",
            "whereabouts",
            "enrolment_status",
            "guardian_name",
            "guardian_phone",
        ]
        read_only_fields = fields


class AssignmentRefSerializer(serializers.Serializer):
    role = serializers.CharField()
    role_name = serializers.CharField(source="get_role_display")
    unit_level = serializers.ChoiceField(source="unit_field", choices=UNIT_FIELDS)
    unit_id = serializers.IntegerField(source="unit.pk")
    unit_name = serializers.CharField(source="unit")
    valid_from = serializers.DateField(allow_null=True)
    valid_to = serializers.DateField(allow_null=True)


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField(help_text="Family name first; empty when not recorded.")
    student = OwnStudentSerializer(allow_null=True)
    assignments = AssignmentRefSerializer(many=True)


class MeView(APIView):
    throttle_classes = [ScopedThrottle]
    throttle_scope = "api"

    @extend_schema(
        summary="Who I am",
        description="My student record (in full: it is mine), or null; and my role assignments valid today "
        "with their units.",
        responses={200: MeSerializer},
    )
    def get(self, request):
        user = request.user
        student = (
            Student.objects.select_related("campus", "college", "grade", "school_class", "building", "room")
            .filter(user_id=user.pk)
            .first()
        )
        today = timezone.localdate()
        assignments = (
            Assignment.objects.filter(user_id=user.pk)
            .exclude(valid_from__gt=today)
            .exclude(valid_to__lt=today)
            .select_related(*UNIT_FIELDS)
            .order_by("role", "id")
        )
        me = {
            "id": user.pk,
            "username": user.get_username(),
            "name": f"{user.last_name}{user.first_name}",
            "student": student,
            "assignments": list(assignments),
        }
        return Response(MeSerializer(me).data)


# ---------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------
def _urlpatterns() -> list:
    router = SimpleRouter()
    router.register("reports", reports.DailyReportViewSet, basename="report")
    router.register("slots", reports.CheckinSlotViewSet, basename="slot")
    router.register("excusals", reports.ExcusalViewSet, basename="excusal")
    router.register("contacts", reports.ContactLogViewSet, basename="contact")
    return [
        path("auth/token/", TokenObtainView.as_view(), name="token-obtain"),
        path("auth/token/refresh/", TokenRotateView.as_view(), name="token-refresh"),
        path("me/", MeView.as_view(), name="me"),
        path("checkin/today/", reports.CheckinTodayView.as_view(), name="checkin-today"),
        # Before the router: "missing" and "proxy" are not report ids.
        path("reports/missing/", reports.MissingListView.as_view(), name="report-missing"),
        path("reports/proxy/", reports.ProxyReportView.as_view(), name="report-proxy"),
        path("rollups/", RollupView.as_view(), name="rollups"),
        path("rollups/signoff/", SignOffView.as_view(), name="rollup-signoff"),
        path("rollups/reopen/", ReopenView.as_view(), name="rollup-reopen"),
        path("notifications/", include("notifications.api.urls")),
        *router.urls,
    ]


app_name = "api"
urlpatterns = _urlpatterns()
