"""Channels: how a :class:`~notifications.models.Delivery` leaves the system.

Product rule (DESIGN.md, "Reminders and the nightly roll-up"): in-app inbox, e-mail,
WeCom / DingTalk group robots, and SMS behind the same interface.  Each channel has
one method, ``send(delivery)``, that returns on success and raises
:class:`DeliveryError` on failure, saying whether trying again later could help.
``deliveries_dispatch`` (services) does the claiming, retries and bookkeeping; a
channel only talks to the outside world.

Group messages never carry a student's health details (群里不发个人健康信息): a robot
channel only sends a :class:`GroupDigest` — a title, a dict of counts and a link —
which it formats itself.  There is no free-text body to put names in, and the digest
refuses long digit runs (phones, 学号, ID numbers) in its title and labels.

SMS goes through a gateway named in ``settings.TONGXIN["SMS_GATEWAY"]`` (a dotted path
to a class with ``send(*, phone, text)``; default :class:`LoggingSmsGateway`, which
only logs).  To plug in a real provider (Aliyun SMS, Tencent Cloud SMS, a campus
gateway), write such a class that calls the provider's API and raises
``DeliveryError(..., retryable=...)`` on failure, and put its path in the setting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import smtplib
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests
from django.apps import apps
from django.core.mail import send_mail
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from config.tongxin import tongxin_setting
from notifications.models import Delivery, DeliveryChannel, GroupRobotKind, Notification

logger = logging.getLogger(__name__)

#: (connect, read) seconds for webhook calls: a slow robot must not stall the dispatcher.
HTTP_TIMEOUT = (3.05, 5)
DEFAULT_SMS_GATEWAY = "notifications.channels.LoggingSmsGateway"


def absolute_link(link: str) -> str:
    """``link`` (a site-relative URL) prefixed with ``TONGXIN["SITE_URL"]`` when set."""
    if not link:
        return ""
    site = str(tongxin_setting("SITE_URL", "")).rstrip("/")
    return f"{site}{link}" if site and link.startswith("/") else link


class DeliveryError(Exception):
    """A send failed.  ``retryable``: a later attempt may succeed (timeouts, rate limits,
    5xx); otherwise the delivery is given up at once (bad address, revoked robot)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


_SECRET_PARAMS = re.compile(r"(?i)\b(key|access_token|sign|timestamp)=[^&\s'\")]+")


def redact(text: str) -> str:
    """Hide webhook credentials that ``requests`` puts into its error messages."""
    return _SECRET_PARAMS.sub(r"\1=***", text)


# ---------------------------------------------------------------------------
# Group digests: counts and a link, nothing personal
# ---------------------------------------------------------------------------
_LONG_DIGITS = re.compile(r"\d{7,}")
MAX_DIGIT_FREE_TEXT = 80
MAX_COUNTS = 30


def _check_label(text: str, what: str) -> None:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{what} must be a non-empty string")
    if len(text) > MAX_DIGIT_FREE_TEXT or "\n" in text or "\r" in text:
        raise ValueError(f"{what} must be one short line")
    if _LONG_DIGITS.search(text):
        # Phones have 11 digits, 学号 8–12, ID numbers 18: never in a group message.
        raise ValueError(f"{what} must not contain long numbers (phone, student or ID numbers)")


@dataclass(frozen=True)
class GroupDigest:
    """What a group robot may say: a title, named counts and a site-relative link.

    Build it from figures, never from a student's record; :meth:`from_rows` turns a list
    of rows (e.g. the students missing a check-in) into counts per label.
    """

    title: str
    counts: Mapping[str, int] = field(default_factory=dict)
    link: str = ""

    def __post_init__(self) -> None:
        _check_label(self.title, "title")
        if len(self.counts) > MAX_COUNTS:
            raise ValueError(f"a digest has at most {MAX_COUNTS} counts")
        for label, value in self.counts.items():
            _check_label(label, "count label")
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError("counts are non-negative integers")
        if self.link and (not self.link.startswith("/") or self.link.startswith("//") or re.search(r"\s", self.link)):
            raise ValueError("link must be a site-relative URL")
        object.__setattr__(self, "counts", dict(self.counts))

    @classmethod
    def from_rows(
        cls,
        *,
        title: str,
        rows: Iterable[Any],
        label: Callable[[Any], str],
        link: str = "",
        total_label: str | None = None,
    ) -> GroupDigest:
        """Count ``rows`` by ``label(row)`` (e.g. a student's class name); only the counts
        survive.  ``total_label`` adds the grand total first."""
        counts: dict[str, int] = {}
        for row in rows:
            key = label(row)
            counts[key] = counts.get(key, 0) + 1
        if total_label:
            counts = {total_label: sum(counts.values()), **counts}
        return cls(title=title, counts=counts, link=link)

    def as_payload(self) -> dict[str, Any]:
        return {"title": self.title, "counts": dict(self.counts), "link": self.link}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> GroupDigest:
        """Rebuild (and so re-validate) a digest stored on a delivery."""
        return cls(title=payload["title"], counts=payload.get("counts", {}), link=payload.get("link", ""))

    def markdown_lines(self) -> list[str]:
        lines = [f"- {label}：**{value}**" for label, value in self.counts.items()]
        url = absolute_link(self.link)
        if url:
            lines.append(f"[{_('查看详情')}]({url})")
        return lines


# ---------------------------------------------------------------------------
# The channel interface and its implementations
# ---------------------------------------------------------------------------
class Channel:
    """Send one delivery.  Return on success; raise :class:`DeliveryError` on failure.

    ``bulk = True`` channels only write to the database and also offer
    ``send_many(deliveries, now)``, which the dispatcher uses set-based.
    """

    name: str = ""
    bulk: bool = False

    def send(self, delivery: Delivery) -> None:
        raise NotImplementedError


class InAppChannel(Channel):
    """The inbox: the notification row already exists, so sending stamps ``delivered_at``.
    A mobile push (JPush, APNs, vendor push) would be sent from here."""

    name = DeliveryChannel.INAPP
    bulk = True

    def send(self, delivery: Delivery) -> None:
        if delivery.notification_id is None:
            raise DeliveryError(_("通知已被删除"), retryable=False)
        Notification.objects.filter(pk=delivery.notification_id, delivered_at__isnull=True).update(
            delivered_at=timezone.now()
        )

    def send_many(self, deliveries: QuerySet, now) -> None:
        Notification.objects.filter(
            pk__in=deliveries.exclude(notification=None).values("notification_id"), delivered_at__isnull=True
        ).update(delivered_at=now)


def _message_text(delivery: Delivery) -> tuple[str, str]:
    payload = delivery.payload or {}
    title = " ".join(str(payload.get("title", "")).split())  # headers must be one line
    parts = [str(payload.get("body", "")).strip(), absolute_link(str(payload.get("link", "")))]
    return title, "\n\n".join(p for p in parts if p)


class EmailChannel(Channel):
    """E-mail through Django's configured ``EMAIL_BACKEND`` (console in the embedded run)."""

    name = DeliveryChannel.EMAIL

    def send(self, delivery: Delivery) -> None:
        if not delivery.address and delivery.user is not None:
            delivery.address = delivery.user.email
        if not delivery.address:
            raise DeliveryError(_("接收人没有登记邮箱"), retryable=False)
        subject, body = _message_text(delivery)
        try:
            send_mail(subject, body, None, [delivery.address], fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"SMTP recipients refused: {exc}", retryable=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc


class RobotChannel(Channel):
    """A group robot's webhook: POST JSON, expect ``{"errcode": 0}``."""

    #: errcodes worth another try later (rate limits, "system busy").
    retryable_errcodes: frozenset[int] = frozenset({-1})

    def url(self, robot) -> str:
        return robot.webhook_url

    def message(self, digest: GroupDigest) -> dict[str, Any]:
        raise NotImplementedError

    def send(self, delivery: Delivery) -> None:
        robot = delivery.robot
        if robot is None or not robot.active:
            raise DeliveryError(_("群机器人已删除或停用"), retryable=False)
        try:
            digest = GroupDigest.from_payload(delivery.payload)
        except (KeyError, TypeError, ValueError) as exc:
            raise DeliveryError(f"invalid digest: {exc}", retryable=False) from exc
        self.post(self.url(robot), self.message(digest))

    def post(self, url: str, message: dict[str, Any]) -> None:
        try:
            response = requests.post(url, json=message, timeout=HTTP_TIMEOUT)
        except requests.RequestException as exc:
            raise DeliveryError(redact(f"{type(exc).__name__}: {exc}"), retryable=True) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise DeliveryError(f"HTTP {response.status_code}", retryable=True)
        if response.status_code >= 400:
            raise DeliveryError(f"HTTP {response.status_code}", retryable=False)
        try:
            answer = response.json()
            errcode = int(answer.get("errcode", -1))
        except (ValueError, AttributeError, TypeError) as exc:
            raise DeliveryError(f"unexpected answer: {redact(response.text[:200])}", retryable=True) from exc
        if errcode != 0:
            raise DeliveryError(
                f"errcode {errcode}: {redact(str(answer.get('errmsg', '')))[:300]}",
                retryable=errcode in self.retryable_errcodes,
            )


class WeComRobotChannel(RobotChannel):
    """企业微信群机器人: markdown message to the webhook (``.../webhook/send?key=...``)."""

    name = DeliveryChannel.WECOM
    # -1 system busy; 45009 API frequency limit (20 messages a minute per robot).
    retryable_errcodes = frozenset({-1, 45009})

    def message(self, digest: GroupDigest) -> dict[str, Any]:
        content = "\n".join([f"**{digest.title}**", *digest.markdown_lines()])
        return {"msgtype": "markdown", "markdown": {"content": content}}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签: URL-encoded base64 of HMAC-SHA256(key=secret, msg="timestamp\\nsecret")."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def dingtalk_signed_url(webhook_url: str, secret: str, timestamp_ms: int | None = None) -> str:
    """The webhook URL with ``&timestamp=..&sign=..`` appended (unchanged without a secret).
    DingTalk rejects a timestamp more than an hour off, so sign at send time."""
    if not secret:
        return webhook_url
    if timestamp_ms is None:
        timestamp_ms = round(time.time() * 1000)
    separator = "&" if "?" in webhook_url else "?"
    return f"{webhook_url}{separator}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


class DingTalkRobotChannel(RobotChannel):
    """钉钉群机器人: markdown message to a signed webhook URL."""

    name = DeliveryChannel.DINGTALK
    # -1 system busy; 130101 and 410100: sending too fast (20 messages a minute per robot).
    retryable_errcodes = frozenset({-1, 130101, 410100})

    def url(self, robot) -> str:
        return dingtalk_signed_url(robot.webhook_url, robot.secret)

    def message(self, digest: GroupDigest) -> dict[str, Any]:
        text = "\n\n".join([f"#### {digest.title}", *digest.markdown_lines()])
        return {"msgtype": "markdown", "markdown": {"title": digest.title, "text": text}}


class SmsGateway(Protocol):
    """What an SMS provider adapter implements; raise :class:`DeliveryError` on failure."""

    def send(self, *, phone: str, text: str) -> None: ...


class LoggingSmsGateway:
    """The default gateway: logs the message (phone masked) and sends nothing."""

    def send(self, *, phone: str, text: str) -> None:
        logger.info("SMS (logging gateway, not sent) to %s: %s", f"{phone[:3]}****{phone[-4:]}", text)


def _student_phone(user_id: int | None) -> str:
    if user_id is None:
        return ""
    student_model = apps.get_model("students", "Student")
    return student_model.objects.filter(user_id=user_id).values_list("phone", flat=True).first() or ""


class SmsChannel(Channel):
    """短信 through the gateway configured in ``TONGXIN["SMS_GATEWAY"]``.  The phone is the
    delivery's address, else the phone on the recipient's student record."""

    name = DeliveryChannel.SMS
    max_length = 300

    def gateway(self) -> SmsGateway:
        return import_string(tongxin_setting("SMS_GATEWAY", DEFAULT_SMS_GATEWAY))()

    def send(self, delivery: Delivery) -> None:
        if not delivery.address:
            delivery.address = _student_phone(delivery.user_id)
        if not delivery.address:
            raise DeliveryError(_("接收人没有登记手机号"), retryable=False)
        title, body = _message_text(delivery)
        text = f"{title}：{body}" if body else title
        self.gateway().send(phone=delivery.address, text=text[: self.max_length])


#: The channel registry: ``Delivery.channel`` → the instance that sends it.
CHANNELS: dict[str, Channel] = {
    DeliveryChannel.INAPP: InAppChannel(),
    DeliveryChannel.EMAIL: EmailChannel(),
    DeliveryChannel.WECOM: WeComRobotChannel(),
    DeliveryChannel.DINGTALK: DingTalkRobotChannel(),
    DeliveryChannel.SMS: SmsChannel(),
}

#: Which channel posts to which kind of group robot.
ROBOT_CHANNELS: dict[str, str] = {
    GroupRobotKind.WECOM: DeliveryChannel.WECOM,
    GroupRobotKind.DINGTALK: DeliveryChannel.DINGTALK,
}
