"""Thin API views of the daily check-in: each reads through a selector or changes state
through a service (:mod:`reports.selectors`, :mod:`reports.services`)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from django_filters.utils import translate_validation
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from campuses.scoping import HEALTH_ROLES, scope_for
from config.authentication import (
    JWTDeferredUserAuthentication,
    JWTUserAuthentication,
    TokenAccount,
    authenticate_account,
)
from config.throttles import ScopedThrottle
from reports import selectors, services
from reports.api.serializers import (
    CheckinSlotSerializer,
    CheckinTodaySerializer,
    ContactLogCreateInputSerializer,
    ContactLogSerializer,
    ContactMarkInputSerializer,
    DailyReportSerializer,
    ExcusalCreateInputSerializer,
    ExcusalSerializer,
    FollowUpCloseInputSerializer,
    MissingStudentNameSerializer,
    MissingStudentSerializer,
    ProxyReportInputSerializer,
    ReportInputSerializer,
)
from reports.filters import MissingFilterSet, ReportFilterSet
from reports.models import CheckinSlot, DailyReport, Excusal
from reports.services import SubmitOutcome
from students.models import ContactLog, Student

#: Path ids: digits only, short enough for a 64-bit column.
ID_REGEX = r"[0-9]{1,15}"


class NotAStudent(exceptions.PermissionDenied):
    default_detail = _("只有学生本人可以这样做。")
    default_code = "not_a_student"


class RolePermission(IsAuthenticated):
    """Allow an action only to signed-in users holding one of the view's
    ``required_roles[action]`` somewhere in their scope (which students they reach is
    decided by the selectors)."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        roles = getattr(view, "required_roles", {}).get(getattr(view, "action", None) or request.method.lower())
        return roles is None or scope_for(request.user).has_role(*roles)


class _Throttled:
    throttle_classes = [ScopedThrottle]
    throttle_scope = "api"


def _outcome_status(outcome: SubmitOutcome) -> int:
    return status.HTTP_201_CREATED if outcome == SubmitOutcome.CREATED else status.HTTP_200_OK


_REPORT_LIST_DOC = (
    "A student's own reports; for staff, the reports of the students they may see health data of "
    "(a class monitor or logistics officer: none but their own).  Without `date`, `date_from` or "
    "`date_to`, a staff list shows today only.  Unit filters use the unit the student was in when reporting."
)


@extend_schema_view(
    list=extend_schema(summary="List check-in reports", description=_REPORT_LIST_DOC),
    retrieve=extend_schema(summary="One check-in report"),
)
class DailyReportViewSet(_Throttled, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """晨午检 reports: a student posts their own; everyone lists what their scope allows."""

    serializer_class = DailyReportSerializer
    filterset_class = ReportFilterSet
    lookup_value_regex = ID_REGEX
    permission_classes = [RolePermission]
    required_roles = {"follow_up": selectors.CHASE_ROLES}
    queryset = DailyReport.objects.none()  # for the schema; real rows come from the selector

    @property
    def throttle_scope(self) -> str:
        return "checkin" if self.action == "create" else "api"

    def get_queryset(self):
        return selectors.report_list(user=self.request.user).order_by("-date", "school_class_id", "student_id", "id")

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        params = self.request.query_params
        if self.action == "list" and not any(p in params for p in ReportFilterSet.DATE_PARAMS):
            scope = scope_for(self.request.user)
            if scope.has_role(*HEALTH_ROLES):
                queryset = queryset.filter(date=selectors.local_now().date())
        return queryset

    def get_authenticators(self):
        # A student's first report of a slot checks the account in its own statement
        # (create); every other request reads it first.  The schema documents the one
        # bearer scheme both take (drf-spectacular marks its views swagger_fake_view).
        request = getattr(self, "request", None)
        deferred = request is not None and self.action_map.get(request.method.lower()) == "create"
        if deferred and not getattr(self, "swagger_fake_view", False):
            return [
                JWTDeferredUserAuthentication() if isinstance(a, JWTUserAuthentication) else a
                for a in super().get_authenticators()
            ]
        return super().get_authenticators()

    @extend_schema(
        summary="Submit my check-in",
        description=(
            "A student reports for themself.  201 when new; 200 with the same report for an identical retry "
            "(same `client_id`, or the same answer for the same slot and date) and for an edit while the slot "
            "is open.  409 `slot_closed` after the slot closes, `slot_not_open` before it opens, "
            "`client_id_conflict` when a client id is reused for a different answer.  Server-set fields "
            "(`student`, `source`, `status`...) are refused with `not_allowed`."
        ),
        request=ReportInputSerializer,
        responses={201: DailyReportSerializer, 200: DailyReportSerializer},
    )
    def create(self, request, *args, **kwargs):
        serializer = ReportInputSerializer(data=request.data)
        direct = self._create_direct(request, serializer)
        if direct is not None:
            return direct
        student = selectors.own_student(authenticate_account(request))
        if student is None:
            raise NotAStudent()
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = services.report_submit(
            student=student,
            slot_code=data["slot"],
            answer=serializer.answer(),
            client_id=data.get("client_id"),
            on=data.get("date"),
            by=request.user,
        )
        result.report.student = student
        return Response(DailyReportSerializer(result.report).data, status=_outcome_status(result.outcome))

    @staticmethod
    def _create_direct(request, serializer) -> Response | None:
        """The plain first report, one statement with the account's checks
        (:func:`reports.services.report_submit_direct`); None for the full way — any
        refusal, the account's included, is the full way's to give, in its order."""
        if not isinstance(request.user, TokenAccount) or not serializer.is_valid():
            return None
        try:
            answer, user_id = serializer.answer(), int(request.user.id)
        except (DjangoValidationError, TypeError, ValueError):
            return None
        data = serializer.validated_data
        result = services.report_submit_direct(
            user_id=user_id, slot_code=data["slot"], answer=answer, client_id=data.get("client_id"), on=data.get("date")
        )
        if result is None:
            return None
        return Response(DailyReportSerializer(result.report).data, status=_outcome_status(result.outcome))

    @extend_schema(
        summary="Close a report's follow-up",
        description="Log the contact and close the follow-up of an abnormal or suspected-bot report.  "
        "409 `not_open` when there is nothing to follow up.",
        request=FollowUpCloseInputSerializer,
        responses={200: DailyReportSerializer},
    )
    @action(detail=True, methods=["post"], url_path="follow-up")
    def follow_up(self, request, pk=None):
        report = self.get_object()  # 404 outside the scope
        serializer = FollowUpCloseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            report, _contact = services.report_follow_up_close(
                actor=request.user, report_id=report.pk, **serializer.validated_data
            )
        except DjangoValidationError as exc:
            if "report" in getattr(exc, "error_dict", {}):
                raise exceptions.PermissionDenied() from exc
            raise
        return Response(DailyReportSerializer(report).data)


class ProxyReportView(_Throttled, APIView):
    permission_classes = [RolePermission]
    required_roles = {"post": selectors.CHASE_ROLES}

    @extend_schema(
        summary="Report on a student's behalf (代报)",
        description=(
            "A counsellor, duty counsellor or college admin reports for a student in their scope after "
            "contacting them; allowed after the slot closes and for past dates.  Also writes a contact-log "
            "entry.  201 new, 200 changed or identical.  A student outside the scope does not exist "
            "(`student`: `does_not_exist`)."
        ),
        request=ProxyReportInputSerializer,
        responses={201: DailyReportSerializer, 200: DailyReportSerializer},
    )
    def post(self, request):
        serializer = ProxyReportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = services.report_submit_proxy(
            actor=request.user,
            student_id=data["student"],
            slot_code=data["slot"],
            answer=serializer.answer(require_temperature=False),
            on=data.get("date"),
            client_id=data.get("client_id"),
            channel=data["channel"],
            note=data["contact_note"],
        )
        return Response(DailyReportSerializer(result.report).data, status=_outcome_status(result.outcome))


_MISSING_ITEM = PolymorphicProxySerializer(
    component_name="MissingStudentItem",
    serializers=[MissingStudentSerializer, MissingStudentNameSerializer],
    resource_type_field_name=None,
    many=True,
)


class MissingListView(_Throttled, generics.ListAPIView):
    """未报名单: who has not reported for a date and slot."""

    filterset_class = MissingFilterSet
    queryset = Student.objects.none()  # for the schema; rows come from the selector
    serializer_class = MissingStudentSerializer

    @extend_schema(
        summary="Who has not reported",
        description=(
            "Enrolled, non-excused students in my scope without a report for `date` (default today) and `slot`. "
            "Counsellors, college and campus staff get the responsible counsellor, the last contact and the "
            "phone (masked unless their role needs it); a class monitor gets names and student numbers of their "
            "class only.  The unit is given by level (`college=12`) or as `unit=college:12`."
        ),
        responses={200: _MISSING_ITEM},
    )
    def get(self, request, *args, **kwargs):
        filterset = MissingFilterSet(request.query_params, queryset=Student.objects.all(), request=request)
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        cleaned = filterset.form.cleaned_data
        on = cleaned.get("date") or selectors.local_now().date()
        students, detailed = selectors.report_missing(
            user=request.user, on=on, slot_code=cleaned["slot"], students=filterset.qs
        )
        page = self.paginate_queryset(students)
        if detailed:
            page = selectors.missing_details(page, on=on)
        serializer_class = MissingStudentSerializer if detailed else MissingStudentNameSerializer
        return self.get_paginated_response(serializer_class(page, many=True).data)


class CheckinTodayView(_Throttled, APIView):
    @extend_schema(
        summary="My check-in today",
        description="Today's slots of my campus: times, whether each is upcoming, open or closed, done, "
        "and whether I am excused.  Students only (403 `not_a_student`).",
        responses={200: CheckinTodaySerializer},
    )
    def get(self, request):
        student = selectors.own_student(request.user)
        if student is None:
            raise NotAStudent()
        slots = selectors.checkin_today(student=student)
        today = slots[0].date if slots else selectors.local_now().date()
        return Response(CheckinTodaySerializer({"date": today, "slots": slots}).data)


@extend_schema_view(list=extend_schema(summary="Check-in slots of my campuses"))
class CheckinSlotViewSet(_Throttled, viewsets.ReadOnlyModelViewSet):
    serializer_class = CheckinSlotSerializer
    lookup_value_regex = ID_REGEX
    queryset = CheckinSlot.objects.none()

    def get_queryset(self):
        return selectors.slot_list(user=self.request.user).order_by("campus_id", "opens_at")


@extend_schema_view(
    list=extend_schema(summary="Excusals in my scope"),
    retrieve=extend_schema(summary="One excusal"),
    create=extend_schema(
        summary="Excuse a student (免报)",
        request=ExcusalCreateInputSerializer,
        responses={201: ExcusalSerializer},
    ),
    destroy=extend_schema(summary="Withdraw an excusal"),
)
class ExcusalViewSet(
    _Throttled,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Excusals from the check-in: read by staff with a health role, written by the
    counsellors who chase the students."""

    serializer_class = ExcusalSerializer
    lookup_value_regex = ID_REGEX
    permission_classes = [RolePermission]
    required_roles = {
        "list": HEALTH_ROLES,
        "retrieve": HEALTH_ROLES,
        "create": selectors.CHASE_ROLES,
        "destroy": selectors.CHASE_ROLES,
    }
    queryset = Excusal.objects.none()

    def get_queryset(self):
        return selectors.excusal_list(user=self.request.user).order_by("-starts_on", "-id")

    def create(self, request, *args, **kwargs):
        serializer = ExcusalCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        excusal = services.excusal_create(
            actor=request.user,
            student_id=data["student"],
            reason=data["reason"],
            starts_on=data["starts_on"],
            ends_on=data.get("ends_on"),
            note=data["note"],
        )
        return Response(ExcusalSerializer(excusal).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        excusal = self.get_object()  # 404 outside the scope
        try:
            services.excusal_delete(actor=request.user, excusal_id=excusal.pk)
        except DjangoValidationError as exc:
            raise exceptions.PermissionDenied() from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="Contact log in my scope"),
    retrieve=extend_schema(summary="One contact-log entry"),
    create=extend_schema(
        summary="Log a contact", request=ContactLogCreateInputSerializer, responses={201: ContactLogSerializer}
    ),
)
class ContactLogViewSet(
    _Throttled, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """The contact log (联系记录): read by staff with a health role, written by the
    counsellors who chase the students."""

    serializer_class = ContactLogSerializer
    lookup_value_regex = ID_REGEX
    permission_classes = [RolePermission]
    required_roles = {
        "list": HEALTH_ROLES,
        "retrieve": HEALTH_ROLES,
        "create": selectors.CHASE_ROLES,
        "mark": selectors.CHASE_ROLES,
    }
    queryset = ContactLog.objects.none()

    def get_queryset(self):
        return selectors.contact_list(user=self.request.user).order_by("-contacted_at", "-id")

    def create(self, request, *args, **kwargs):
        serializer = ContactLogCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        entry = services.contact_log_create(
            actor=request.user,
            student_id=data["student"],
            channel=data["channel"],
            outcome=data["outcome"],
            note=data["note"],
            contacted_at=data.get("contacted_at"),
        )
        return Response(ContactLogSerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Mark students as contacted",
        description="One contact-log entry per student, all or nothing: an unknown or foreign id refuses the "
        "batch (`students`: `does_not_exist`).",
        request=ContactMarkInputSerializer,
        responses={201: ContactLogSerializer(many=True)},
    )
    @action(detail=False, methods=["post"], url_path="mark", pagination_class=None)
    def mark(self, request):
        serializer = ContactMarkInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        entries = services.contacts_mark(
            actor=request.user,
            student_ids=data["students"],
            channel=data["channel"],
            outcome=data["outcome"],
            note=data["note"],
        )
        # Re-read through the selector: one query with the students joined, not one per entry.
        entries = self.get_queryset().filter(pk__in=[entry.pk for entry in entries])
        return Response(ContactLogSerializer(entries, many=True).data, status=status.HTTP_201_CREATED)
