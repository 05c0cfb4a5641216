"""Notifications: the per-person inbox and the outbox of deliveries.

Product rule (DESIGN.md, "Reminders and the nightly roll-up"): reminders, missing
lists and sign-off messages reach people through an in-app inbox, e-mail, enterprise
messenger group robots (WeCom / DingTalk) and SMS, and nobody is reminded twice for
the same thing.  Two tables carry that:

- :class:`Notification` is what a person sees in the mobile app's inbox.  It is
  unique per (recipient, ``dedupe_key``), so a reminder for (slot, date, step) can
  never be stored twice, however often or concurrently the job that makes it runs.
- :class:`Delivery` is the transactional outbox: a row per message per channel,
  written in the same transaction as the business change, and sent later by the
  frequent ``deliveries_dispatch`` beat task.  Nothing on a request path touches the
  broker or the network.  Its ``dedupe_key`` is unique too.

:class:`GroupRobot` is a configured WeCom or DingTalk group bot.  Group messages carry
counts and a link only (see :class:`notifications.channels.GroupDigest`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campuses.models import Campus, College


class NotificationKind(models.TextChoices):
    """What a notification is about; the mobile app picks an icon by it."""

    REMINDER = "reminder", _("打卡提醒")
    MISSING_LIST = "missing_list", _("未报名单")
    ROLLUP = "rollup", _("每日汇总")
    SIGNOFF = "signoff", _("审核确认")
    ALERT = "alert", _("预警")
    SYSTEM = "system", _("系统消息")


class Notification(models.Model):
    """One message in one person's inbox (站内信).

    ``dedupe_key`` names the event that caused it (e.g. ``checkin:A:2026-11-24:morning:open``);
    the unique constraint on (``dedupe_key``, ``recipient``) makes a second insert of the
    same event for the same person a no-op.  ``delivered_at`` is stamped by the in-app
    channel when the outbox has handled it (where a mobile push would go); the inbox shows
    a notification as soon as its transaction commits.
    """

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="notifications", verbose_name=_("接收人")
    )
    kind = models.CharField(_("类型"), max_length=16, choices=NotificationKind.choices)
    title = models.CharField(_("标题"), max_length=200)
    body = models.TextField(_("内容"), blank=True)
    link = models.CharField(_("链接"), max_length=500, blank=True, help_text=_("站内相对地址，如 /reports/missing/"))
    dedupe_key = models.CharField(_("去重键"), max_length=200)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    delivered_at = models.DateTimeField(_("送达时间"), null=True, blank=True)
    read_at = models.DateTimeField(_("已读时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("通知")
        verbose_name_plural = _("通知")
        ordering = ["-created_at", "-id"]
        constraints = [
            # dedupe_key first: one index serves the constraint and "who already has this event".
            models.UniqueConstraint(fields=["dedupe_key", "recipient"], name="notification_dedupe_unique"),
            models.CheckConstraint(condition=Q(kind__in=NotificationKind.values), name="notification_kind_valid"),
        ]
        indexes = [
            models.Index(fields=["recipient", "-created_at", "-id"], name="notification_inbox"),
            models.Index(fields=["recipient"], condition=Q(read_at__isnull=True), name="notification_unread"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class DeliveryChannel(models.TextChoices):
    """The ways a message leaves the system (see :mod:`notifications.channels`)."""

    INAPP = "inapp", _("站内信")
    EMAIL = "email", _("电子邮件")
    WECOM = "wecom", _("企业微信群机器人")
    DINGTALK = "dingtalk", _("钉钉群机器人")
    SMS = "sms", _("短信")


class DeliveryStatus(models.TextChoices):
    """Where a delivery is in its attempt chain.

    ``failed`` means the last attempt failed and another one is scheduled at
    ``next_attempt_at``; ``dead`` means it was given up (permanent error or too many
    attempts) and waits for an admin's "立即重试".
    """

    PENDING = "pending", _("待发送")
    SENDING = "sending", _("发送中")
    SENT = "sent", _("已发送")
    FAILED = "failed", _("失败待重试")
    DEAD = "dead", _("已放弃")


class GroupRobotKind(models.TextChoices):
    """The enterprise messengers whose group robots Tongxin can post to."""

    WECOM = "wecom", _("企业微信")
    DINGTALK = "dingtalk", _("钉钉")


class GroupRobot(models.Model):
    """A WeCom or DingTalk group robot (群机器人) that receives digests for a unit.

    The webhook URL carries the robot's access token, and ``secret`` is DingTalk's
    signing secret (加签); both are credentials, shown masked in lists.  ``campus`` /
    ``college`` say which unit's digests the group gets (none: university-wide).
    Robots accept about 20 messages a minute, so only digests go to them.
    """

    name = models.CharField(_("名称"), max_length=100, unique=True)
    kind = models.CharField(_("类型"), max_length=16, choices=GroupRobotKind.choices)
    webhook_url = models.URLField(_("Webhook 地址"), max_length=500)
    secret = models.CharField(_("加签密钥"), max_length=200, blank=True, help_text=_("钉钉机器人“加签”安全设置的密钥"))
    campus = models.ForeignKey(Campus, models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("校区"))
    college = models.ForeignKey(
        College, models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("学院")
    )
    active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("群机器人")
        verbose_name_plural = _("群机器人")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=GroupRobotKind.values), name="group_robot_kind_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class Delivery(models.Model):
    """One message on one channel to one target, and its chain of send attempts (发送记录).

    Written by :func:`notifications.services.notify` / ``group_digest_send`` inside the
    caller's transaction (the outbox), claimed and sent by ``deliveries_dispatch``.
    ``dedupe_key`` is unique, so the same message is never queued twice.  While a
    worker holds a delivery (``sending``), ``next_attempt_at`` is the end of its lease:
    a worker that dies mid-send leaves it to be picked up again after the lease.
    Every outcome stays recorded: ``attempts``, ``last_error``, ``sent_at``.
    """

    channel = models.CharField(_("渠道"), max_length=16, choices=DeliveryChannel.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("接收人"),
    )
    robot = models.ForeignKey(
        GroupRobot, models.SET_NULL, null=True, blank=True, related_name="deliveries", verbose_name=_("群机器人")
    )
    address = models.CharField(
        _("地址"), max_length=254, blank=True, help_text=_("邮箱、手机号或机器人名称；为空时发送时按接收人查找")
    )
    notification = models.ForeignKey(
        Notification, models.SET_NULL, null=True, blank=True, related_name="deliveries", verbose_name=_("通知")
    )
    payload = models.JSONField(_("内容"), default=dict, blank=True)
    status = models.CharField(_("状态"), max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(_("尝试次数"), default=0)
    next_attempt_at = models.DateTimeField(_("下次尝试时间"), default=timezone.now)
    claim = models.CharField(_("领取标记"), max_length=32, blank=True, editable=False)
    last_error = models.TextField(_("最近错误"), blank=True)
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    dedupe_key = models.CharField(_("去重键"), max_length=255, unique=True)

    class Meta:
        verbose_name = _("发送记录")
        verbose_name_plural = _("发送记录")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(channel__in=DeliveryChannel.values), name="delivery_channel_valid"),
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["claim"], condition=~Q(claim=""), name="delivery_claim"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} → {self.target_display}"

    @property
    def target_display(self) -> str:
        """The address if known, else the recipient's username (select_related("user"))."""
        if self.address:
            return self.address
        return self.user.get_username() if self.user_id else ""
