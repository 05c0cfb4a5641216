"""Serializers of the check-in API: ``<Model>Serializer`` for output, and
``<Action>InputSerializer`` for what a client may send.  They check shape and types
only; the rules live in :mod:`reports.services`."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.serializers import FlatSerializer
from reports.filters import ID_MAX
from reports.models import (
    TEMPERATURE_MAX,
    TEMPERATURE_MIN,
    CheckinSlot,
    Excusal,
    ExcusalReason,
    FollowUp,
    HealthStatus,
    ReportFlag,
    ReportSource,
    SlotCode,
    SlotState,
    Symptom,
)
from reports.services import ReportAnswer
from students.masking import shown_phone
from students.models import ContactLog, Whereabouts


def _id_field(**kwargs) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=ID_MAX, **kwargs)


@extend_schema_field(
    {
        "type": "string",
        "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$",
        "example": "06:00:00",
        "description": "Local wall-clock time on the campus (Asia/Shanghai), without an offset.",
    }
)
class LocalTimeField(serializers.TimeField):
    """A slot time: a local wall-clock time, not an instant (OpenAPI's ``time`` format
    would demand an offset)."""


# ---------------------------------------------------------------------------
# Slots
# ---------------------------------------------------------------------------
class CheckinSlotSerializer(serializers.ModelSerializer):
    campus_name = serializers.CharField(source="campus.name", read_only=True)
    name = serializers.CharField(source="get_code_display", read_only=True)
    opens_at = LocalTimeField(read_only=True)
    due_at = LocalTimeField(read_only=True)
    closes_at = LocalTimeField(read_only=True)

    class Meta:
        model = CheckinSlot
        fields = ["id", "campus", "campus_name", "code", "name", "opens_at", "due_at", "closes_at"]
        read_only_fields = fields


class SlotTodaySerializer(serializers.Serializer):
    """One of today's slots for the student: its times, state and whether it is done."""

    code = serializers.ChoiceField(source="slot.code", choices=SlotCode.choices)
    name = serializers.CharField(source="slot.get_code_display")
    opens_at = LocalTimeField(source="slot.opens_at")
    due_at = LocalTimeField(source="slot.due_at")
    closes_at = LocalTimeField(source="slot.closes_at")
    state = serializers.ChoiceField(choices=SlotState.choices)
    late = serializers.BooleanField(help_text="A report sent now would be late (after the due time).")
    done = serializers.BooleanField()
    report_id = serializers.IntegerField(allow_null=True)
    excused = serializers.BooleanField()


class CheckinTodaySerializer(serializers.Serializer):
    date = serializers.DateField()
    slots = SlotTodaySerializer(many=True)


# ---------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------
class ReportInputSerializer(FlatSerializer):
    """A student's check-in.  ``slot`` is the slot code of the student's campus; ``date``
    defaults to today; ``client_id`` is a UUID the app generates once per submission
    and repeats on every retry."""

    #: Fields the server sets; a client sending them is told so.
    FORBIDDEN = ("student", "source", "status", "abnormal", "flags", "suspected_bot", "follow_up", "submitted_by")

    slot = serializers.ChoiceField(choices=SlotCode.choices)
    date = serializers.DateField(required=False)
    client_id = serializers.UUIDField(required=False, allow_null=True)
    temperature = serializers.DecimalField(
        max_digits=4, decimal_places=1, min_value=TEMPERATURE_MIN, max_value=TEMPERATURE_MAX
    )
    symptoms = serializers.ListField(
        child=serializers.ChoiceField(choices=Symptom.choices), required=False, max_length=len(Symptom.values)
    )
    symptoms_other = serializers.CharField(required=False, allow_blank=True, max_length=100)
    health_status = serializers.ChoiceField(choices=HealthStatus.choices, required=False)
    whereabouts = serializers.ChoiceField(choices=Whereabouts.choices, required=False)
    province_code = serializers.CharField(required=False, allow_blank=True, max_length=6)
    city_code = serializers.CharField(required=False, allow_blank=True, max_length=6)
    risk_area_14d = serializers.BooleanField(required=False, default=False)
    case_contact = serializers.BooleanField(required=False, default=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)

    def validate(self, attrs):
        data = self.initial_data if isinstance(self.initial_data, dict) else {}
        sent = [name for name in self.FORBIDDEN if name in data]
        if sent:
            raise serializers.ValidationError(
                {name: serializers.ErrorDetail(str(_("由系统设置，不能提交。")), code="not_allowed") for name in sent}
            )
        return attrs

    def answer(self, *, require_temperature: bool = True) -> ReportAnswer:
        values = {name: self.validated_data.get(name) for name in ReportAnswer.FIELDS}
        return ReportAnswer.clean(require_temperature=require_temperature, **values)


class ProxyReportInputSerializer(ReportInputSerializer):
    """A counsellor's report on a student's behalf (代报) after contacting them.  The
    temperature may be left out when the student had no thermometer; ``date`` defaults
    to today and may be in the past."""

    FORBIDDEN = ("source", "status", "abnormal", "flags", "suspected_bot", "follow_up", "submitted_by")

    student = _id_field()
    temperature = serializers.DecimalField(
        max_digits=4,
        decimal_places=1,
        min_value=TEMPERATURE_MIN,
        max_value=TEMPERATURE_MAX,
        required=False,
        allow_null=True,
    )
    channel = serializers.ChoiceField(choices=ContactLog.Channel.choices, required=False, default="phone")
    contact_note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class DailyReportSerializer(FlatSerializer):
    """A check-in report.  Declared field by field (not a ModelSerializer) and flat: it
    is on the hot path of every submission, where model introspection and DRF's deep
    copy of the fields per instance are slow."""

    id = serializers.IntegerField(read_only=True)
    student = serializers.IntegerField(source="student_id", read_only=True)
    student_number = serializers.CharField(source="student.student_number", read_only=True)
    student_name = serializers.CharField(source="student.name", read_only=True)
    date = serializers.DateField(read_only=True)
    slot = serializers.ChoiceField(source="slot.code", choices=SlotCode.choices, read_only=True)
    school_class = serializers.IntegerField(source="school_class_id", read_only=True)
    temperature = serializers.DecimalField(
        max_digits=4, decimal_places=1, coerce_to_string=False, allow_null=True, read_only=True
    )
    symptoms = serializers.ListField(child=serializers.ChoiceField(choices=Symptom.choices), read_only=True)
    symptoms_other = serializers.CharField(read_only=True)
    health_status = serializers.ChoiceField(choices=HealthStatus.choices, read_only=True)
    whereabouts = serializers.ChoiceField(choices=Whereabouts.choices, read_only=True)
    province_code = serializers.CharField(read_only=True)
    city_code = serializers.CharField(read_only=True)
    risk_area_14d = serializers.BooleanField(read_only=True)
    case_contact = serializers.BooleanField(read_only=True)
    note = serializers.CharField(read_only=True)
    client_id = serializers.UUIDField(read_only=True, allow_null=True)
    source = serializers.ChoiceField(choices=ReportSource.choices, read_only=True)
    submitted_at = serializers.DateTimeField(read_only=True)
    late = serializers.BooleanField(read_only=True)
    flags = serializers.ListField(child=serializers.ChoiceField(choices=ReportFlag.choices), read_only=True)
    abnormal = serializers.BooleanField(read_only=True)
    suspected_bot = serializers.BooleanField(read_only=True)
    follow_up = serializers.ChoiceField(choices=FollowUp.choices, read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class FollowUpCloseInputSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=ContactLog.Channel.choices, required=False, default="phone")
    outcome = serializers.ChoiceField(choices=ContactLog.Outcome.choices, required=False, default="followed_up")
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


# ---------------------------------------------------------------------------
# The missing list
# ---------------------------------------------------------------------------
class LastContactSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    channel = serializers.ChoiceField(choices=ContactLog.Channel.choices)
    outcome = serializers.ChoiceField(choices=ContactLog.Outcome.choices)
    by = serializers.CharField(allow_null=True)


class MissingStudentNameSerializer(serializers.Serializer):
    """A missing student as a class monitor sees them: name and student number only."""

    student_number = serializers.CharField()
    name = serializers.CharField()
    school_class_name = serializers.CharField(source="school_class.name")


class MissingStudentSerializer(serializers.Serializer):
    """A missing student as a counsellor sees them: who to call, who is responsible and
    when they were last contacted.  The phone number is masked unless the viewer's
    role at that student needs it in full."""

    id = serializers.IntegerField()
    student_number = serializers.CharField()
    name = serializers.CharField()
    school_class = serializers.IntegerField(source="school_class_id")
    school_class_name = serializers.CharField(source="school_class.name")
    phone = serializers.SerializerMethodField()
    counsellor = serializers.CharField(source="counsellor_name", allow_null=True)
    last_contact = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.STR)
    def get_phone(self, obj) -> str:
        return shown_phone(obj, bool(obj.pii_phone))

    @extend_schema_field(LastContactSerializer(allow_null=True))
    def get_last_contact(self, obj):
        if obj.last_contact_at is None:
            return None
        return {
            "at": serializers.DateTimeField().to_representation(obj.last_contact_at),
            "channel": obj.last_contact_channel,
            "outcome": obj.last_contact_outcome,
            "by": obj.last_contact_by,
        }


class ClosedMissingNameExtension(OpenApiSerializerExtension):
    """Document the names-only shape as closed (no other properties), so that a
    counsellor's detailed row matches exactly one branch of the list's ``oneOf``."""

    target_class = MissingStudentNameSerializer

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        return schema


# ---------------------------------------------------------------------------
# Excusals and the contact log
# ---------------------------------------------------------------------------
class ExcusalSerializer(serializers.ModelSerializer):
    student_number = serializers.CharField(source="student.student_number", read_only=True)
    student_name = serializers.CharField(source="student.name", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True)

    class Meta:
        model = Excusal
        fields = [
            "id",
            "student",
            "student_number",
            "student_name",
            "reason",
            "note",
            "starts_on",
            "ends_on",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


class ExcusalCreateInputSerializer(serializers.Serializer):
    student = _id_field()
    reason = serializers.ChoiceField(choices=ExcusalReason.choices)
    starts_on = serializers.DateField()
    ends_on = serializers.DateField(required=False, allow_null=True)
    note = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")


class ContactLogSerializer(serializers.ModelSerializer):
    student_number = serializers.CharField(source="student.student_number", read_only=True)
    student_name = serializers.CharField(source="student.name", read_only=True)
    contacted_by = serializers.CharField(source="contacted_by.username", read_only=True, allow_null=True)

    class Meta:
        model = ContactLog
        fields = [
            "id",
            "student",
            "student_number",
            "student_name",
            "contacted_at",
            "channel",
            "outcome",
            "note",
            "contacted_by",
            "created_at",
        ]
        read_only_fields = fields


class ContactLogCreateInputSerializer(serializers.Serializer):
    student = _id_field()
    channel = serializers.ChoiceField(choices=ContactLog.Channel.choices, required=False, default="phone")
    outcome = serializers.ChoiceField(choices=ContactLog.Outcome.choices, required=False, default="reached")
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    contacted_at = serializers.DateTimeField(required=False, allow_null=True)


class ContactMarkInputSerializer(serializers.Serializer):
    """Mark several students as contacted at once (e.g. ticked on the missing list)."""

    students = serializers.ListField(child=_id_field(), min_length=1, max_length=500)
    channel = serializers.ChoiceField(choices=ContactLog.Channel.choices, required=False, default="phone")
    outcome = serializers.ChoiceField(choices=ContactLog.Outcome.choices, required=False, default="reached")
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
