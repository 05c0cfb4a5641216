"""Data of the cluster alerts (聚集性预警).

Product rule (issue 5, "Cluster alerts"): several abnormal reports in the same dorm
room, building or class within a window (e.g. 3 in 48 h) raise an alert for the
campus coordinator and the college(s) concerned, with the students involved; the
alert is acknowledged and closed with a note, and is never raised twice for the same
cluster.

Identity of a cluster: at most one *active* (open or acknowledged) alert per (level,
unit) — a partial unique constraint, so two concurrent detections cannot both insert.
New abnormal students of that unit join the active alert.  Once it is closed, a new
alert for the unit needs enough new cases after the close.

Imported by :mod:`reports.models` so Django registers these models in the ``reports``
app; the rules live in :mod:`reports.alerts`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from campuses.models import Campus, College
from students.models import Student


class ClusterLevel(models.TextChoices):
    """The units a cluster is looked for in."""

    ROOM = "room", _("宿舍")
    BUILDING = "building", _("楼宇")
    SCHOOL_CLASS = "school_class", _("班级")


class AlertState(models.TextChoices):
    OPEN = "open", _("待处理")
    ACKNOWLEDGED = "acknowledged", _("已确认")
    CLOSED = "closed", _("已关闭")


#: States in which an alert is the one alert of its unit.
ACTIVE_STATES: tuple[str, ...] = (AlertState.OPEN, AlertState.ACKNOWLEDGED)


class ClusterAlert(models.Model):
    """A cluster of abnormal reports in one room, building or class (聚集性预警).

    ``unit_id`` points at the Room, Building or SchoolClass of ``level``; ``unit_name``
    is a copy for lists and messages.  ``campus`` and ``college`` (the college when
    every student involved belongs to one, always for a class) are copies for filters.
    ``window_start``/``window_end`` span the abnormal reports counted; ``first_seen``
    is when the alert was raised, ``last_seen`` the last detection that still found
    the cluster.  State changes and new students are kept in history."""

    level = models.CharField(_("层级"), max_length=16, choices=ClusterLevel.choices)
    unit_id = models.BigIntegerField(_("单位编号"))
    unit_name = models.CharField(_("单位名称"), max_length=200)
    campus = models.ForeignKey(Campus, models.PROTECT, related_name="+", verbose_name=_("校区"))
    college = models.ForeignKey(
        College, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("学院")
    )
    case_count = models.PositiveIntegerField(_("涉及学生数"), default=0)
    min_cases = models.PositiveSmallIntegerField(_("预警阈值(人)"))
    window_hours = models.PositiveSmallIntegerField(_("时间窗口(小时)"))
    window_start = models.DateTimeField(_("最早异常报告"))
    window_end = models.DateTimeField(_("最近异常报告"))
    first_seen = models.DateTimeField(_("首次发现"))
    last_seen = models.DateTimeField(_("最近发现"))
    state = models.CharField(_("状态"), max_length=16, choices=AlertState.choices, default=AlertState.OPEN)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("确认人")
    )
    acknowledged_at = models.DateTimeField(_("确认时间"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("关闭人")
    )
    closed_at = models.DateTimeField(_("关闭时间"), null=True, blank=True)
    close_note = models.CharField(_("处理说明"), max_length=1000, blank=True)
    students = models.ManyToManyField(
        Student, through="ClusterAlertStudent", related_name="+", verbose_name=_("涉及学生")
    )
    history = HistoricalRecords(excluded_fields=["last_seen"])

    class Meta:
        verbose_name = _("聚集性预警")
        verbose_name_plural = _("聚集性预警")
        ordering = ["-first_seen", "-id"]
        constraints = [
            # The cluster's identity: one active alert per unit, whoever detects it.
            models.UniqueConstraint(
                fields=["level", "unit_id"],
                condition=Q(state__in=["open", "acknowledged"]),
                name="cluster_alert_one_active_per_unit",
            ),
            models.CheckConstraint(condition=Q(level__in=ClusterLevel.values), name="cluster_alert_level_valid"),
            models.CheckConstraint(condition=Q(state__in=AlertState.values), name="cluster_alert_state_valid"),
            models.CheckConstraint(
                condition=~Q(state="closed") | (Q(closed_at__isnull=False) & ~Q(close_note="")),
                name="cluster_alert_closed_has_note",
            ),
            models.CheckConstraint(
                condition=Q(window_end__gte=models.F("window_start")), name="cluster_alert_window_ordered"
            ),
        ]
        indexes = [
            models.Index(fields=["level", "unit_id", "closed_at"], name="cluster_alert_unit_closed"),
            models.Index(fields=["state", "campus"], name="cluster_alert_state_campus"),
        ]

    def __str__(self) -> str:
        return _("%(level)s %(unit)s（%(n)s人）") % {
            "level": self.get_level_display(),
            "unit": self.unit_name,
            "n": self.case_count,
        }

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


class ClusterAlertStudent(models.Model):
    """A student involved in a cluster alert: since when (``added_at``, the detection
    that found them) and their first abnormal report in the window.  A student is in
    an alert once."""

    alert = models.ForeignKey(ClusterAlert, models.CASCADE, related_name="members", verbose_name=_("预警"))
    student = models.ForeignKey(Student, models.CASCADE, related_name="+", verbose_name=_("学生"))
    first_report_at = models.DateTimeField(_("首次异常报告时间"))
    added_at = models.DateTimeField(_("加入时间"))

    class Meta:
        verbose_name = _("预警涉及学生")
        verbose_name_plural = _("预警涉及学生")
        ordering = ["alert_id", "first_report_at", "student_id"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "student"], name="cluster_alert_student_once"),
        ]
        indexes = [models.Index(fields=["student", "alert"], name="cluster_member_student")]

    def __str__(self) -> str:
        return f"{self.alert_id}:{self.student_id}"
