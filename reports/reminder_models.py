"""Data of the reminder ladder (催报).

Product rule (DESIGN.md, "Reminders and the nightly roll-up"): at slot open every
expected student is reminded; before the due time those still missing; at the due
time each counsellor gets their missing list; later the college gets what is still
missing; the class monitor can be a step.  Nobody is reminded twice for the same slot
and step.  Due reminders are rows that a frequent beat task dispatches — never long
Celery ``eta``/``countdown`` (the Redis broker redelivers those as duplicates).

Imported by :mod:`reports.models`; the rules live in :mod:`reports.reminders`.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class StepKind(models.TextChoices):
    """Who a step reminds."""

    STUDENTS_ALL = "students_all", _("提醒全部应报学生")
    STUDENTS_MISSING = "students_missing", _("提醒未报学生")
    MONITORS = "monitors", _("班长收到本班未报名单")
    COUNSELLORS = "counsellors", _("辅导员收到未报名单")
    COLLEGE_ADMINS = "college_admins", _("学院收到未报汇总")


class Anchor(models.TextChoices):
    OPENS = "opens", _("时段开始")
    DUE = "due", _("截止时间")


class ReminderStep(models.Model):
    """One rung of a campus slot's reminder ladder: whom to remind, at which minute
    relative to the slot's opening or due time, over which channels."""

    slot = models.ForeignKey(
        "reports.CheckinSlot", models.CASCADE, related_name="reminder_steps", verbose_name=_("打卡时段")
    )
    kind = models.CharField(_("对象"), max_length=20, choices=StepKind.choices)
    anchor = models.CharField(_("基准"), max_length=8, choices=Anchor.choices)
    offset_minutes = models.SmallIntegerField(_("偏移(分钟)"), default=0)
    channels = models.JSONField(_("渠道"), default=list, help_text=_('如 ["inapp", "email"]'))
    active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("催报步骤")
        verbose_name_plural = _("催报步骤")
        ordering = ["slot_id", "anchor", "offset_minutes"]
        constraints = [
            models.UniqueConstraint(fields=["slot", "kind", "anchor", "offset_minutes"], name="reminder_step_unique"),
            models.CheckConstraint(condition=Q(kind__in=StepKind.values), name="reminder_step_kind_valid"),
            models.CheckConstraint(
                condition=Q(offset_minutes__gte=-720) & Q(offset_minutes__lte=720), name="reminder_offset_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.slot} {self.get_kind_display()} {self.get_anchor_display()}{self.offset_minutes:+d}′"

    def clean(self) -> None:
        from notifications.services import PERSONAL_CHANNELS

        unknown = set(self.channels or []) - set(PERSONAL_CHANNELS)
        if unknown or not isinstance(self.channels, list):
            raise ValidationError(
                {
                    "channels": _("渠道只能是 inapp、email、sms（群机器人只接收汇总）：%(bad)s")
                    % {"bad": ", ".join(sorted(map(str, unknown)))}
                }
            )


class ReminderRun(models.Model):
    """The claim that a step has been carried out for one local date: created once,
    so a second dispatch — a task run twice, or two beats — finds it and does nothing."""

    step = models.ForeignKey(ReminderStep, models.CASCADE, related_name="runs", verbose_name=_("催报步骤"))
    date = models.DateField(_("日期"))
    claimed_at = models.DateTimeField(_("开始时间"))
    finished_at = models.DateTimeField(_("完成时间"), null=True)
    recipients = models.PositiveIntegerField(_("提醒人数"), default=0)
    skipped_reason = models.CharField(_("跳过原因"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("催报记录")
        verbose_name_plural = _("催报记录")
        ordering = ["-date", "step_id"]
        constraints = [models.UniqueConstraint(fields=["step", "date"], name="reminder_run_once_per_day")]

    def __str__(self) -> str:
        return f"{self.date} {self.step}"
