"""Daily check-in (晨午检 / 每日平安报告): slots, excusals and reports.

Product rules (DESIGN.md, "Daily check-in"): each campus configures its check-in
slots; a report belongs to (student, local date, slot), unique; an edit before the
slot closes replaces the answer and is kept in history; abnormal answers raise a
follow-up for the counsellor; excused students are out of the denominator.  The
rules themselves live in :mod:`reports.services`; this module holds the data and the
constraints that keep it sound.

A year of reports is ~25 million rows, so a report carries copies of the student's
campus, college, grade and class at submit time and its local ``date``: the nightly
roll-up and the missing list then read narrow indexes on (date, slot, unit) instead
of joining the student table.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from campuses.models import Campus, College, Grade, SchoolClass
from students.models import Student, Whereabouts

#: Plausible body temperatures (°C) a report may carry.
TEMPERATURE_MIN = Decimal("34.0")
TEMPERATURE_MAX = Decimal("42.0")
#: From this temperature on a report is abnormal (发热).
FEVER_AT = Decimal("37.3")


class SlotCode(models.TextChoices):
    """The kinds of check-in slot.  Codes are shared by all campuses, so a university-wide
    question ("who has not done the morning check-in") names a slot by its code."""

    MORNING = "morning", _("晨检")
    NOON = "noon", _("午检")
    EVENING = "evening", _("晚检")


class SlotState(models.TextChoices):
    UPCOMING = "upcoming", _("未开始")
    OPEN = "open", _("进行中")
    CLOSED = "closed", _("已关闭")


class CheckinSlot(models.Model):
    """A daily check-in slot of one campus (e.g. 晨检 06:00–10:00, due 09:00), in local
    time.  Reports are accepted from ``opens_at`` until ``closes_at``; a report after
    ``due_at`` is late.  A campus may have a single slot."""

    campus = models.ForeignKey(Campus, models.PROTECT, related_name="checkin_slots", verbose_name=_("校区"))
    code = models.CharField(_("时段"), max_length=16, choices=SlotCode.choices)
    opens_at = models.TimeField(_("开始时间"))
    due_at = models.TimeField(_("截止时间"))
    closes_at = models.TimeField(_("关闭时间"))
    active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("打卡时段")
        verbose_name_plural = _("打卡时段")
        ordering = ["campus_id", "opens_at"]
        constraints = [
            models.UniqueConstraint(fields=["campus", "code"], name="slot_code_unique_per_campus"),
            models.CheckConstraint(condition=Q(code__in=SlotCode.values), name="slot_code_valid"),
            models.CheckConstraint(
                condition=Q(opens_at__lt=models.F("due_at")) & Q(due_at__lte=models.F("closes_at")),
                name="slot_times_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campus} {self.get_code_display()} {self.opens_at:%H:%M}–{self.closes_at:%H:%M}"

    def window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
        """Opening, due and closing instants of this slot on local date ``day``."""
        tz = timezone.get_default_timezone()
        return tuple(dt.datetime.combine(day, t, tzinfo=tz) for t in (self.opens_at, self.due_at, self.closes_at))

    def state(self, day: dt.date, now: dt.datetime) -> SlotState:
        """Whether this slot on ``day`` is upcoming, open or closed at instant ``now``."""
        opens, _due, closes = self.window(day)
        if now < opens:
            return SlotState.UPCOMING
        return SlotState.OPEN if now < closes else SlotState.CLOSED

    def is_late(self, day: dt.date, now: dt.datetime) -> bool:
        """Whether a report at ``now`` comes after this slot's due time on ``day``."""
        return now > self.window(day)[1]


class ExcusalReason(models.TextChoices):
    """Why a student is not expected to check in (免报原因)."""

    ON_LEAVE = "on_leave", _("请假")
    IN_HOSPITAL = "in_hospital", _("住院")
    NO_PHONE = "no_phone", _("无手机")
    GRADUATED = "graduated", _("已毕业")
    OTHER = "other", _("其他")


class Excusal(models.Model):
    """A student excused from the check-in (免报) from ``starts_on`` to ``ends_on``
    (open-ended if empty), with who excused them and why.  An excused student is not
    expected: not on the missing list and not in the roll-up's denominator."""

    student = models.ForeignKey(
        Student, models.CASCADE, related_name="excusals", verbose_name=_("学生"), db_index=False
    )
    reason = models.CharField(_("原因"), max_length=16, choices=ExcusalReason.choices)
    note = models.CharField(_("说明"), max_length=200, blank=True)
    starts_on = models.DateField(_("开始日期"))
    ends_on = models.DateField(_("结束日期"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("登记人")
    )
    created_at = models.DateTimeField(_("登记时间"), auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("免报登记")
        verbose_name_plural = _("免报登记")
        ordering = ["-starts_on", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(reason__in=ExcusalReason.values), name="excusal_reason_valid"),
            models.CheckConstraint(
                condition=~Q(reason=ExcusalReason.OTHER) | ~Q(note=""), name="excusal_other_needs_note"
            ),
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")),
                name="excusal_range_ordered",
            ),
        ]
        indexes = [models.Index(fields=["student", "starts_on"], name="excusal_student_start")]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} {self.starts_on}–{self.ends_on or '…'}"


class Symptom(models.TextChoices):
    """Symptoms a student can tick (症状)."""

    FEVER = "fever", _("发热")
    COUGH = "cough", _("咳嗽")
    SORE_THROAT = "sore_throat", _("咽痛")
    FATIGUE = "fatigue", _("乏力")
    LOSS_OF_SMELL = "loss_of_smell", _("嗅觉味觉减退")
    SHORTNESS_OF_BREATH = "shortness_of_breath", _("呼吸困难")
    DIARRHOEA = "diarrhoea", _("腹泻")
    OTHER = "other", _("其他")


class HealthStatus(models.TextChoices):
    """The student's own account of their health (健康状况)."""

    HEALTHY = "healthy", _("健康")
    UNWELL = "unwell", _("身体不适")
    HOME_OBSERVATION = "home_observation", _("居家观察")
    QUARANTINE = "quarantine", _("隔离观察")
    IN_TREATMENT = "in_treatment", _("就医治疗")


class ReportSource(models.TextChoices):
    SELF = "self", _("本人填报")
    PROXY = "proxy", _("辅导员代报")


class ReportFlag(models.TextChoices):
    """Why a report needs the counsellor's attention."""

    FEVER = "fever", _("体温异常")
    SYMPTOMS = "symptoms", _("有症状")
    UNWELL = "unwell", _("健康状况异常")
    RISK_AREA = "risk_area", _("14天内到过风险地区")
    CASE_CONTACT = "case_contact", _("接触过病例")
    IDENTICAL_ANSWERS = "identical_answers", _("连续多日答案完全相同")
    SAME_SECOND = "same_second", _("连续多日同一秒提交")


#: Flags that make a report abnormal (health); the others point at automation.
ABNORMAL_FLAGS = frozenset(
    {ReportFlag.FEVER, ReportFlag.SYMPTOMS, ReportFlag.UNWELL, ReportFlag.RISK_AREA, ReportFlag.CASE_CONTACT}
)
BOT_FLAGS = frozenset({ReportFlag.IDENTICAL_ANSWERS, ReportFlag.SAME_SECOND})


class FollowUp(models.TextChoices):
    NONE = "none", _("无需跟进")
    OPEN = "open", _("待跟进")
    CLOSED = "closed", _("已跟进")


class DailyReport(models.Model):
    """One student's check-in for one local date and slot (晨午检记录).  The answer
    fields are what the student (or, for 代报, the counsellor) said; ``flags``,
    ``abnormal``, ``suspected_bot`` and ``follow_up`` are computed by
    :func:`reports.services.report_submit`.  Unit columns are copies taken at submit
    time for set-based roll-ups; every version is kept in history."""

    student = models.ForeignKey(
        Student, models.CASCADE, related_name="daily_reports", verbose_name=_("学生"), db_index=False
    )
    date = models.DateField(_("日期"))
    slot = models.ForeignKey(CheckinSlot, models.PROTECT, related_name="+", verbose_name=_("时段"), db_index=False)
    # Copies of the student's place at submit time (the composite indexes below cover them).
    campus = models.ForeignKey(
        Campus, models.PROTECT, related_name="+", verbose_name=_("校区"), db_index=False, editable=False
    )
    college = models.ForeignKey(
        College, models.PROTECT, related_name="+", verbose_name=_("学院"), db_index=False, editable=False
    )
    grade = models.ForeignKey(
        Grade, models.PROTECT, related_name="+", verbose_name=_("年级"), db_index=False, editable=False
    )
    school_class = models.ForeignKey(
        SchoolClass, models.PROTECT, related_name="+", verbose_name=_("班级"), db_index=False, editable=False
    )

    # -- the answer ---------------------------------------------------------
    temperature = models.DecimalField(_("体温(°C)"), max_digits=4, decimal_places=1, null=True, blank=True)
    symptoms = models.JSONField(_("症状"), default=list, blank=True)
    symptoms_other = models.CharField(_("其他症状"), max_length=100, blank=True)
    health_status = models.CharField(
        _("健康状况"), max_length=20, choices=HealthStatus.choices, default=HealthStatus.HEALTHY
    )
    whereabouts = models.CharField(
        _("所在地"), max_length=16, choices=Whereabouts.choices, default=Whereabouts.ON_CAMPUS
    )
    province_code = models.CharField(_("所在省份代码"), max_length=6, blank=True)
    city_code = models.CharField(_("所在城市代码"), max_length=6, blank=True)
    risk_area_14d = models.BooleanField(_("14天内到过风险地区"), default=False)
    case_contact = models.BooleanField(_("接触过病例"), default=False)
    note = models.CharField(_("备注"), max_length=500, blank=True)

    # -- how it arrived -----------------------------------------------------
    client_id = models.UUIDField(_("客户端编号"), null=True, blank=True)
    source = models.CharField(_("来源"), max_length=8, choices=ReportSource.choices, default=ReportSource.SELF)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("提交人"),
        db_index=False,
    )
    submitted_at = models.DateTimeField(_("提交时间"))
    #: Seconds since local midnight of ``submitted_at``: the lazy-bot check compares them.
    submitted_second = models.PositiveIntegerField(_("提交时刻(秒)"))
    late = models.BooleanField(_("迟报"), default=False)
    #: Digest of the answer fields: identical retries and identical days compare it.
    answer_hash = models.CharField(_("答案摘要"), max_length=32, editable=False)

    # -- computed -----------------------------------------------------------
    flags = models.JSONField(_("提示"), default=list, blank=True)
    abnormal = models.BooleanField(_("异常"), default=False)
    suspected_bot = models.BooleanField(_("疑似自动打卡"), default=False)
    follow_up = models.CharField(_("跟进状态"), max_length=8, choices=FollowUp.choices, default=FollowUp.NONE)
    follow_up_closed_at = models.DateTimeField(_("跟进时间"), null=True, blank=True)
    follow_up_closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("跟进人"),
        db_index=False,
    )

    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)
    # History rows are looked up by report id (and student); indexes on the copied unit
    # columns would only slow the hot insert path down.
    history = HistoricalRecords(
        excluded_fields=["updated_at"],
        no_db_index=["slot", "campus", "college", "grade", "school_class", "submitted_by", "follow_up_closed_by"],
    )

    class Meta:
        verbose_name = _("晨午检记录")
        verbose_name_plural = _("晨午检记录")
        ordering = ["-date", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["student", "date", "slot"], name="report_unique_per_student_date_slot"),
            models.UniqueConstraint(fields=["student", "client_id"], name="report_client_id_unique_per_student"),
            models.CheckConstraint(
                condition=Q(temperature__isnull=True)
                | (Q(temperature__gte=TEMPERATURE_MIN) & Q(temperature__lte=TEMPERATURE_MAX)),
                name="report_temperature_plausible",
            ),
            # Only a counsellor's proxy report may lack a temperature (the student had no thermometer).
            models.CheckConstraint(
                condition=Q(temperature__isnull=False) | Q(source=ReportSource.PROXY),
                name="report_self_has_temperature",
            ),
            models.CheckConstraint(condition=Q(source__in=ReportSource.values), name="report_source_valid"),
            models.CheckConstraint(condition=Q(health_status__in=HealthStatus.values), name="report_health_valid"),
            models.CheckConstraint(condition=Q(whereabouts__in=Whereabouts.values), name="report_whereabouts_valid"),
            models.CheckConstraint(condition=Q(follow_up__in=FollowUp.values), name="report_follow_up_valid"),
            models.CheckConstraint(condition=Q(submitted_second__lt=86400), name="report_submitted_second_in_day"),
        ]
        indexes = [
            # The roll-up and the missing list, per unit level.
            models.Index(fields=["date", "slot", "school_class"], name="report_date_slot_class"),
            models.Index(fields=["date", "slot", "grade"], name="report_date_slot_grade"),
            models.Index(fields=["date", "slot", "college"], name="report_date_slot_college"),
            # ...with the student: a missing list's count over a campus or college reads
            # the day's reports from this index alone, in a hash anti-join, instead of
            # probing the report table once per student (reports/migrations/0009).
            models.Index(fields=["date", "slot", "campus"], include=["student"], name="report_date_slot_campus_inc"),
            # Cluster detection and the abnormal ledger read only the abnormal reports of a window.
            models.Index(fields=["date"], condition=Q(abnormal=True), name="report_abnormal_date"),
            # The counsellors' follow-up list: only open rows are indexed, so it stays small.
            models.Index(fields=["school_class", "date"], condition=Q(follow_up="open"), name="report_follow_up_open"),
            # ...and by student: the morning page's earlier open follow-ups of a counsellor's
            # students (reports/migrations/0006).
            models.Index(
                fields=["student", "date"], condition=Q(follow_up="open"), name="report_follow_up_open_student"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.student_id} {self.date} {self.slot_id}"


class MissingStudent(Student):
    """The students who have not reported for a date and slot (未报名单), as an admin
    page: a proxy of :class:`students.models.Student` whose admin reads
    :func:`reports.selectors.report_missing`."""

    class Meta:
        proxy = True
        verbose_name = _("未报学生")
        verbose_name_plural = _("未报名单")


# The nightly roll-up, its sign-off and the reminder ladder live in their own modules;
# importing them here registers their models with the reports app.
from reports.alert_models import AlertState, ClusterAlert, ClusterAlertStudent, ClusterLevel  # noqa: E402, F401
from reports.export_models import ExportKind, ExportRecord, LedgerDownload, LedgerJob  # noqa: E402, F401
from reports.reminder_models import Anchor, ReminderRun, ReminderStep, StepKind  # noqa: E402, F401
from reports.rollup_models import Level, RollupRun, RollupSnapshot, SignOff, SignOffState  # noqa: E402, F401
