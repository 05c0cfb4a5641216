"""The export audit (导出记录).

Product rule (issue 5, "Excel ledgers"): every export — the ledgers (台账) and the
roster (花名册) — is recorded: who, what, with which parameters, how many rows, when
and under which file name; the university admin sees the record.  Reads are not
audited by django-simple-history (LIBRARIES.md), so exports keep their own,
append-only log.

Imported by :mod:`reports.models` so Django registers these models in the ``reports``
app; :func:`reports.ledgers.export_record` writes the rows.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from config.jobs import ACTIVE, BackgroundJob, JobStatus


class ExportKind(models.TextChoices):
    """What was exported."""

    STAY = "stay", _("留校学生情况统计表")
    ROLLUP = "rollup", _("每日汇总表")
    MISSING = "missing", _("未报名单")
    ABNORMAL = "abnormal", _("异常名单")
    ROSTER = "roster", _("学生花名册")
    ROSTER_TEMPLATE = "roster_template", _("花名册模板")


class ExportRecord(models.Model):
    """One export by one user (导出记录): the kind, the parameters (date, slot, unit,
    selection), how many rows it held, the file name and when.  Append-only: never
    changed or deleted through the application."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+", verbose_name=_("导出人")
    )
    #: A copy, so the record still names the person after the account is gone.
    username = models.CharField(_("用户名"), max_length=150)
    kind = models.CharField(_("类别"), max_length=20, choices=ExportKind.choices)
    parameters = models.JSONField(_("参数"), default=dict, blank=True)
    row_count = models.PositiveIntegerField(_("行数"))
    filename = models.CharField(_("文件名"), max_length=255)
    created_at = models.DateTimeField(_("导出时间"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("导出记录")
        verbose_name_plural = _("导出记录")
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(kind__in=ExportKind.values), name="export_kind_valid")]
        indexes = [models.Index(fields=["user", "created_at"], name="export_user_time")]

    def __str__(self) -> str:
        return f"{self.username} {self.get_kind_display()} {self.created_at:%Y-%m-%d %H:%M}"


class LedgerDownload(ExportRecord):
    """The admin's ledger download page (台账下载): a proxy so the page gets its own
    entry in the admin, open to every role that may export a ledger."""

    class Meta:
        proxy = True
        verbose_name = _("台账下载")
        verbose_name_plural = _("台账下载")


class LedgerJob(BackgroundJob):
    """A ledger built in the background (后台导出): a whole campus's or university's
    《留校学生情况统计表》 takes seconds to tens of seconds to write, too long to hold a
    web thread.  The request checks the parameters and the user's right to them, then
    stores the job; a Celery task builds the workbook as that user (scope and masking
    at build time, the export audit written then), and the file is kept here for its
    owner alone to download until it expires (:mod:`reports.ledger_jobs`).  Kept in the
    database, not on a disk, so that web and worker processes on different hosts need
    share nothing else."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="ledger_jobs", verbose_name=_("申请人")
    )
    kind = models.CharField(_("台账"), max_length=20, choices=ExportKind.choices)
    #: The request's parameters as checked: ``date`` (ISO), ``slot`` (code or ""), ``unit`` (``level:id`` or "").
    parameters = models.JSONField(_("参数"), default=dict)
    #: ``kind`` and the parameters: one active job per user and ledger (a double click joins it).
    dedupe_key = models.CharField(max_length=200)
    #: How many students the selection held when asked (why it went to the background).
    students = models.PositiveIntegerField(_("范围内学生数"), default=0)
    filename = models.CharField(_("文件名"), max_length=255, blank=True)
    ascii_filename = models.CharField(max_length=255, blank=True)
    data = models.BinaryField(null=True, editable=False)
    row_count = models.PositiveIntegerField(_("行数"), null=True, blank=True)
    created_at = models.DateTimeField(_("申请时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("后台导出")
        verbose_name_plural = _("后台导出")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=ExportKind.values), name="ledger_job_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=JobStatus.values), name="ledger_job_status_valid"),
            models.UniqueConstraint(
                fields=["user", "dedupe_key"], condition=Q(status__in=ACTIVE), name="ledger_job_one_active"
            ),
        ]
        indexes = [
            models.Index(fields=["user", "created_at"], name="ledger_job_user_time"),
            models.Index(fields=["status", "created_at"], name="ledger_job_status_time"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.created_at:%Y-%m-%d %H:%M} ({self.get_status_display()})"
