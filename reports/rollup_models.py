"""Data of the nightly roll-up and its sign-off up the reporting chain.

Product rule (DESIGN.md, "Reminders and the nightly roll-up"): every night the day's
figures are compiled for every class, then grade, college, campus and university, and
stored as snapshots; the counsellor confirms their grades, the college when all its
grades are in, then the campus, then the university.  A confirmed day is locked; a
later change is kept as a late amendment and the level above can reopen the day with
a reason; the revision history stays.

Imported by :mod:`reports.models` so Django registers these models in the ``reports``
app; the rules live in :mod:`reports.rollup` and :mod:`reports.signoff`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords


class Level(models.TextChoices):
    """The levels of the reporting chain, bottom-up."""

    SCHOOL_CLASS = "school_class", _("班级")
    GRADE = "grade", _("年级")
    COLLEGE = "college", _("学院")
    CAMPUS = "campus", _("校区")
    UNIVERSITY = "university", _("学校")


#: The level directly below / above each level of the chain (class → grade → … → university).
LEVEL_BELOW: dict[str, str] = dict(zip(Level.values[1:], Level.values, strict=False))
LEVEL_ABOVE: dict[str, str] = {below: above for above, below in LEVEL_BELOW.items()}

#: The figures every snapshot carries, in the order the ledgers print them.
FIGURES: tuple[str, ...] = (
    "expected",
    "reported",
    "missing",
    "excused",
    "late",
    "proxy",
    "abnormal",
    "fever",
    "quarantine",
    "on_campus",
    "home",
    "elsewhere",
)


class RollupSnapshot(models.Model):
    """The figures of one unit for one local date and check-in slot code (日报汇总).

    ``unit_id`` points at the row of the level's model (SchoolClass, Grade, College,
    Campus, University); ``campus_id``/``college_id`` are copies that let a scoped
    query read a whole subtree off one index.  ``tags`` holds the number of students
    with each active key-attention tag.  Rewritten whole for a (date, slot) by each
    run, so a rerun gives identical rows."""

    date = models.DateField(_("日期"))
    slot_code = models.CharField(_("时段"), max_length=16)
    level = models.CharField(_("层级"), max_length=16, choices=Level.choices)
    unit_id = models.BigIntegerField(_("单位编号"))
    parent_id = models.BigIntegerField(_("上级单位编号"), null=True)
    campus_id = models.BigIntegerField(_("校区编号"), null=True)
    college_id = models.BigIntegerField(_("学院编号"), null=True)
    grade_id = models.BigIntegerField(_("年级编号"), null=True)
    unit_name = models.CharField(_("单位名称"), max_length=100)
    expected = models.PositiveIntegerField(_("应报"), default=0)
    reported = models.PositiveIntegerField(_("已报"), default=0)
    missing = models.PositiveIntegerField(_("未报"), default=0)
    excused = models.PositiveIntegerField(_("免报"), default=0)
    late = models.PositiveIntegerField(_("迟报"), default=0)
    proxy = models.PositiveIntegerField(_("代报"), default=0)
    abnormal = models.PositiveIntegerField(_("异常"), default=0)
    fever = models.PositiveIntegerField(_("发热"), default=0)
    quarantine = models.PositiveIntegerField(_("隔离"), default=0)
    on_campus = models.PositiveIntegerField(_("在校"), default=0)
    home = models.PositiveIntegerField(_("在家"), default=0)
    elsewhere = models.PositiveIntegerField(_("其他地方"), default=0)
    tags = models.JSONField(_("重点人员"), default=dict)
    computed_at = models.DateTimeField(_("计算时间"))

    class Meta:
        verbose_name = _("日报汇总")
        verbose_name_plural = _("日报汇总")
        ordering = ["date", "slot_code", "level", "unit_id"]
        constraints = [
            models.UniqueConstraint(fields=["date", "slot_code", "level", "unit_id"], name="snapshot_unique_unit_day"),
            models.CheckConstraint(condition=Q(level__in=Level.values), name="snapshot_level_valid"),
            models.CheckConstraint(
                condition=Q(reported__lte=models.F("expected")) & Q(missing__lte=models.F("expected")),
                name="snapshot_counts_consistent",
            ),
        ]
        indexes = [
            models.Index(fields=["level", "unit_id", "date"], name="snapshot_unit_trend"),
            models.Index(fields=["date", "level", "parent_id"], name="snapshot_children"),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.slot_code} {self.unit_name}"

    @property
    def completion(self) -> float | None:
        return round(100 * self.reported / self.expected, 1) if self.expected else None

    def figures(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in FIGURES}


class RollupRun(models.Model):
    """The fill state of one roll-up of one (date, slot) (after zulip's FillState): a
    run that dies before ``finished_at`` left nothing behind (it writes in one
    transaction) and the next run simply redoes it."""

    date = models.DateField(_("日期"))
    slot_code = models.CharField(_("时段"), max_length=16)
    started_at = models.DateTimeField(_("开始时间"))
    finished_at = models.DateTimeField(_("完成时间"), null=True)
    units = models.PositiveIntegerField(_("单位数"), default=0)
    seconds = models.FloatField(_("用时(秒)"), default=0)

    class Meta:
        verbose_name = _("汇总运行")
        verbose_name_plural = _("汇总运行")
        ordering = ["-date", "slot_code"]
        constraints = [models.UniqueConstraint(fields=["date", "slot_code"], name="rollup_run_unique_day_slot")]

    def __str__(self) -> str:
        return f"{self.date} {self.slot_code}"


class SignOffState(models.TextChoices):
    CONFIRMED = "confirmed", _("已确认")
    REOPENED = "reopened", _("已退回")


class SignOff(models.Model):
    """The confirmation of one unit's figures for one day (逐级审核确认).  A confirmed
    day is locked: the snapshot's figures are frozen in ``confirmed_figures`` and later
    reports are late amendments shown against them.  The level above may reopen it
    with a reason; every change is kept in history."""

    date = models.DateField(_("日期"))
    level = models.CharField(_("层级"), max_length=16, choices=Level.choices)
    unit_id = models.BigIntegerField(_("单位编号"))
    state = models.CharField(_("状态"), max_length=16, choices=SignOffState.choices)
    remarks = models.CharField(_("说明"), max_length=500, blank=True)
    confirmed_figures = models.JSONField(_("确认时数据"), default=dict)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+", verbose_name=_("确认人")
    )
    confirmed_at = models.DateTimeField(_("确认时间"), null=True)
    reopened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("退回人")
    )
    reopened_at = models.DateTimeField(_("退回时间"), null=True, blank=True)
    reopen_reason = models.CharField(_("退回原因"), max_length=500, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("逐级确认")
        verbose_name_plural = _("逐级确认")
        ordering = ["-date", "level", "unit_id"]
        constraints = [
            models.UniqueConstraint(fields=["date", "level", "unit_id"], name="signoff_unique_unit_day"),
            models.CheckConstraint(condition=Q(state__in=SignOffState.values), name="signoff_state_valid"),
            models.CheckConstraint(
                condition=~Q(state=SignOffState.REOPENED) | ~Q(reopen_reason=""), name="signoff_reopen_needs_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.level}:{self.unit_id} {self.get_state_display()}"
