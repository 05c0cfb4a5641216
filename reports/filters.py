"""FilterSets of the daily check-in lists, shared by the API and the dashboards.

Unit filters are plain ids applied to a queryset that is already scoped by
:func:`campuses.scoping.scope_for` (never ``ModelChoiceFilter``s, whose choices would
list foreign units): asking for a unit outside one's scope simply yields nothing.  A
unit is given either by level (``?college=12``) or as ``?unit=college:12``.
"""

from __future__ import annotations

from django import forms
from django.core.validators import RegexValidator
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field

from reports.models import DailyReport, FollowUp, ReportSource, SlotCode
from students.models import Student

#: Largest id accepted in a filter or a path (keeps 64-bit columns and JSON numbers safe).
ID_MAX = 2**53 - 1
#: Unit levels a report carries as its own columns (copied at submit time).
REPORT_UNIT_LEVELS = ("campus", "college", "grade", "school_class")
#: Unit levels a student carries (teaching tree and dorm tree).
STUDENT_UNIT_LEVELS = ("campus", "college", "grade", "school_class", "building", "room")


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": ID_MAX})
class IdFilter(filters.NumberFilter):
    """An id: a positive integer, never a decimal."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(*args, **kwargs)


def _unit_filter(levels: tuple[str, ...]) -> filters.CharFilter:
    pattern = rf"^({'|'.join(levels)}):[1-9][0-9]{{0,15}}$"
    return filters.CharFilter(
        method="filter_unit",
        label=_("单位"),
        help_text=format_lazy("{}{}", _("单位，写作“层级:编号”，例如 college:12。层级："), ", ".join(levels)),
        validators=[RegexValidator(pattern, message=_("单位应写作“层级:编号”，例如 college:12。"), code="invalid")],
    )


class _UnitFilterSet(filters.FilterSet):
    def filter_unit(self, queryset, name, value):
        level, unit_id = value.split(":")
        return queryset.filter(**{f"{level}_id": int(unit_id)})


class ReportFilterSet(_UnitFilterSet):
    """Filters of the report list: date or date range, slot, unit at any level (the
    unit the student was in when reporting), abnormal, suspected bot, source, follow-up."""

    date = filters.DateFilter(label=_("日期"))
    date_from = filters.DateFilter(field_name="date", lookup_expr="gte", label=_("开始日期"))
    date_to = filters.DateFilter(field_name="date", lookup_expr="lte", label=_("结束日期"))
    slot = filters.ChoiceFilter(field_name="slot__code", choices=SlotCode.choices, label=_("时段"))
    campus = IdFilter(field_name="campus_id", label=_("校区"))
    college = IdFilter(field_name="college_id", label=_("学院"))
    grade = IdFilter(field_name="grade_id", label=_("年级"))
    school_class = IdFilter(field_name="school_class_id", label=_("班级"))
    unit = _unit_filter(REPORT_UNIT_LEVELS)
    student = IdFilter(field_name="student_id", label=_("学生"))
    abnormal = filters.BooleanFilter(label=_("异常"))
    suspected_bot = filters.BooleanFilter(label=_("疑似自动打卡"))
    source = filters.ChoiceFilter(choices=ReportSource.choices, label=_("来源"))
    follow_up = filters.ChoiceFilter(choices=FollowUp.choices, label=_("跟进状态"))

    #: Parameters that restrict dates: without any, a staff list shows today only.
    DATE_PARAMS = ("date", "date_from", "date_to")

    class Meta:
        model = DailyReport
        fields: list[str] = []


class MissingFilterSet(_UnitFilterSet):
    """Parameters of the missing list: the date (default today), the slot by code
    (required: campuses share slot codes) and an optional unit."""

    date = filters.DateFilter(method="keep", label=_("日期"), help_text=_("默认为今天。"))
    slot = filters.ChoiceFilter(choices=SlotCode.choices, method="keep", required=True, label=_("时段"))
    campus = IdFilter(field_name="campus_id", label=_("校区"))
    college = IdFilter(field_name="college_id", label=_("学院"))
    grade = IdFilter(field_name="grade_id", label=_("年级"))
    school_class = IdFilter(field_name="school_class_id", label=_("班级"))
    building = IdFilter(field_name="building_id", label=_("楼宇"))
    room = IdFilter(field_name="room_id", label=_("宿舍"))
    unit = _unit_filter(STUDENT_UNIT_LEVELS)

    class Meta:
        model = Student
        fields: list[str] = []

    def keep(self, queryset, name, value):
        """``date`` and ``slot`` parameterise the selector instead of filtering rows."""
        return queryset
