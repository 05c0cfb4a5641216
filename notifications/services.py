"""Notification services: write to the outbox, dispatch it, mark messages read.

Product rules (DESIGN.md, "Reminders and the nightly roll-up"; issue 4):

- **Transactional outbox.**  :func:`notify` and :func:`group_digest_send` only write
  rows (:class:`Notification`, :class:`Delivery`) inside the caller's transaction.
  Nothing here touches the broker or the network on a request path; the beat-driven
  :func:`deliveries_dispatch` sends what is due.  If Redis is down, the rows wait.
- **Never twice.**  Both tables have unique dedupe keys and every insert is
  ``INSERT … ON CONFLICT DO NOTHING`` (``bulk_create(ignore_conflicts=True)``, or
  ``INSERT … SELECT`` from the query of recipients a reminder step passes), so a
  rerun, a redelivered task or two beats running the same job create nothing twice.
  Dispatch claims each due delivery with a conditional ``UPDATE`` (healthchecks'
  ``sendalerts`` pattern, plus ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two
  dispatchers never send the same delivery.
- **Retries with back-off, then dead.**  A failed attempt is retried after 1, 2, 4, 8…
  minutes up to ``TONGXIN["NOTIFY_MAX_ATTEMPTS"]`` attempts, then marked ``dead`` with
  its last error, where the admin shows it and offers "立即重试".
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice

from django.db import connection, connections, transaction
from django.db.models import F, QuerySet
from django.db.models.constants import OnConflict
from django.utils import timezone

from config.tongxin import tongxin_setting
from notifications.channels import CHANNELS, ROBOT_CHANNELS, DeliveryError, GroupDigest
from notifications.models import (
    Delivery,
    DeliveryChannel,
    DeliveryStatus,
    GroupRobot,
    Notification,
    NotificationKind,
)

logger = logging.getLogger(__name__)

#: Rows per statement when writing the outbox (keeps SQLite under its variable limit).
OUTBOX_BATCH = 1000
#: Channels a personal notification can go out on (robots take digests only).
PERSONAL_CHANNELS = frozenset({DeliveryChannel.INAPP, DeliveryChannel.EMAIL, DeliveryChannel.SMS})
#: Statuses a dispatcher may pick up once ``next_attempt_at`` has passed (for ``sending``
#: that means the claiming worker's lease ran out: it died mid-send).
DUE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.SENDING)
RETRYABLE_STATUSES = (DeliveryStatus.FAILED, DeliveryStatus.DEAD)


def max_attempts() -> int:
    """Attempts before a delivery is given up (``TONGXIN["NOTIFY_MAX_ATTEMPTS"]``, default 6)."""
    return int(tongxin_setting("NOTIFY_MAX_ATTEMPTS", 6))


def retry_delay(attempts: int) -> dt.timedelta:
    """Wait after the ``attempts``-th failed attempt: base × 2^(attempts−1), capped.

    With the defaults (``NOTIFY_RETRY_BASE_SECONDS`` 60, ``NOTIFY_RETRY_MAX_SECONDS`` 3600)
    that is 1, 2, 4, 8, 16 minutes.
    """
    base = int(tongxin_setting("NOTIFY_RETRY_BASE_SECONDS", 60))
    cap = int(tongxin_setting("NOTIFY_RETRY_MAX_SECONDS", 3600))
    return dt.timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), cap))


def send_lease() -> dt.timedelta:
    """How long a claimed delivery belongs to its worker (``NOTIFY_LEASE_SECONDS``, 300).
    Far longer than any send may take (webhook timeouts are a few seconds)."""
    return dt.timedelta(seconds=int(tongxin_setting("NOTIFY_LEASE_SECONDS", 300)))


# ---------------------------------------------------------------------------
# Writing the outbox
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    """One recipient's version of a notification (content may differ per person, e.g.
    each counsellor's own missing list under one event key)."""

    recipient_id: int
    title: str
    body: str = ""
    link: str = ""


def _batched(items: Iterable, size: int):
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _recipient_id(recipient) -> int:
    return recipient if isinstance(recipient, int) else recipient.pk


def notify(
    *,
    recipients: Iterable,
    kind: str,
    title: str,
    body: str = "",
    link: str = "",
    dedupe_key: str,
    channels: Sequence[str] = (DeliveryChannel.INAPP,),
) -> int:
    """Put the same notification into each recipient's inbox and queue its deliveries.

    ``recipients`` are users or user ids — or a queryset selecting one column of user
    ids (no NULLs), which is then written set-based: two ``INSERT … SELECT`` statements
    per channel whatever the number of recipients (a reminder to a whole campus).
    ``dedupe_key`` names the event (e.g.
    ``"checkin:<campus>:<date>:<slot>:open"``): a recipient who already has a
    notification with that key gets nothing new, so reruns and concurrent runs are
    harmless.  Runs inside the caller's transaction and writes rows only (the outbox).
    Returns how many notifications this call created.
    """
    if isinstance(recipients, QuerySet):
        return _notify_query(
            recipient_ids=recipients,
            kind=kind,
            title=title,
            body=body,
            link=link,
            dedupe_key=dedupe_key,
            channels=_checked_channels(kind, dedupe_key, channels),
        )
    messages = (Message(recipient_id=_recipient_id(r), title=title, body=body, link=link) for r in recipients)
    return notifications_send(kind=kind, dedupe_key=dedupe_key, messages=messages, channels=channels)


def _payload(channel: str, *, title: str, body: str, link: str) -> dict:
    """A delivery's payload: in-app deliveries show the notification itself; the others
    carry what they send."""
    return {} if channel == DeliveryChannel.INAPP else {"title": title, "body": body, "link": link}


def _checked_channels(kind: str, dedupe_key: str, channels: Sequence[str]) -> list[str]:
    """The arguments every outbox write shares, checked; the channels without repeats."""
    if kind not in NotificationKind.values:
        raise ValueError(f"unknown notification kind {kind!r}")
    if not dedupe_key or len(dedupe_key) > Notification._meta.get_field("dedupe_key").max_length:
        raise ValueError("dedupe_key must be 1–200 characters")
    unknown = set(channels) - PERSONAL_CHANNELS
    if unknown:
        raise ValueError(f"not a personal channel: {sorted(unknown)} (group robots take digests)")
    return list(dict.fromkeys(channels))


def _insert_select(conn, model, computed: dict[str, tuple[str, list]]) -> tuple[str, str, list]:
    """The head and select list of ``INSERT (ignoring conflicts) INTO model (every
    column) SELECT …``: a column named in ``computed`` (by attname) takes that SQL
    expression and its parameters, any other its model default as a parameter.
    Returns the head, the select list and its parameters, in column order."""
    qn = conn.ops.quote_name
    columns, expressions, params = [], [], []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        columns.append(qn(f.column))
        sql, values = computed.get(f.attname) or ("%s", [f.get_db_prep_save(f.get_default(), conn)])
        expressions.append(sql)
        params.extend(values)
    insert = conn.ops.insert_statement(on_conflict=OnConflict.IGNORE)
    head = f"{insert} {qn(model._meta.db_table)} ({', '.join(columns)})"
    return head, ", ".join(expressions), params


def _notify_query(
    *,
    recipient_ids: QuerySet,
    kind: str,
    title: str,
    body: str,
    link: str,
    dedupe_key: str,
    channels: list[str],
) -> int:
    """:func:`notify` for a queryset of user ids: the notifications from it in one
    ``INSERT … SELECT``, then per channel one for the deliveries of the notifications
    this call created (those carrying its ``now``, as in :func:`notifications_send`)."""
    if len(recipient_ids.query.values_select) != 1:
        raise ValueError("recipients: a queryset must select one column of user ids (values_list('…', flat=True))")
    conn = connections[recipient_ids.db]
    qn = conn.ops.quote_name
    suffix = conn.ops.on_conflict_suffix_sql([], OnConflict.IGNORE, None, None)
    sub_sql, sub_params = recipient_ids.query.sql_with_params()
    moment = timezone.now()
    now = Notification._meta.get_field("created_at").get_db_prep_save(moment, conn)
    const = lambda value: ("%s", [value])  # noqa: E731
    head, select, params = _insert_select(
        conn,
        Notification,
        {
            "recipient_id": ("q.*", []),  # the queryset's one column
            "kind": const(kind),
            "title": const(title),
            "body": const(body),
            "link": const(link),
            "dedupe_key": const(dedupe_key),
            "created_at": const(now),
        },
    )
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        # DISTINCT on the ids alone: PostgreSQL would type the constants of a DISTINCT
        # select list as text before the INSERT could give them their columns' types.
        cursor.execute(
            f"{head} SELECT {select} FROM (SELECT DISTINCT * FROM ({sub_sql}) r) q {suffix}", [*params, *sub_params]
        )
        created = Notification.objects.using(conn.alias).filter(dedupe_key=dedupe_key, created_at=moment).count()
        for channel in channels:
            payload = _payload(channel, title=title, body=body, link=link)
            d_head, d_select, d_params = _insert_select(
                conn,
                Delivery,
                {
                    "channel": const(channel),
                    "user_id": ("n.recipient_id", []),
                    "notification_id": ("n.id", []),
                    "payload": const(Delivery._meta.get_field("payload").get_db_prep_save(payload, conn)),
                    "next_attempt_at": const(now),
                    "created_at": const(now),
                    "dedupe_key": ("%s || CAST(n.id AS TEXT)", [f"{channel}:n"]),  # as notifications_send names them
                },
            )
            cursor.execute(
                f"{d_head} SELECT {d_select} FROM {qn(Notification._meta.db_table)} n "
                f"WHERE n.{qn('dedupe_key')} = %s AND n.{qn('created_at')} = %s {suffix}",
                [*d_params, dedupe_key, now],
            )
    return created


def notifications_send(
    *,
    kind: str,
    dedupe_key: str,
    messages: Iterable[Message],
    channels: Sequence[str] = (DeliveryChannel.INAPP,),
) -> int:
    """Set-based core of :func:`notify` for per-recipient content: one notification per
    message (first message wins for a repeated recipient) and one delivery per channel
    for each notification this call created.  A handful of statements per
    :data:`OUTBOX_BATCH` recipients; returns how many notifications were created.
    """
    channels = _checked_channels(kind, dedupe_key, channels)
    unique: dict[int, Message] = {}
    for message in messages:
        unique.setdefault(message.recipient_id, message)
    if not unique:
        return 0

    now = timezone.now()
    created_total = 0
    with transaction.atomic():
        for chunk in _batched(unique.values(), OUTBOX_BATCH):
            ids = [m.recipient_id for m in chunk]
            existing = set(
                Notification.objects.filter(dedupe_key=dedupe_key, recipient_id__in=ids).values_list(
                    "recipient_id", flat=True
                )
            )
            fresh = [m for m in chunk if m.recipient_id not in existing]
            if not fresh:
                continue
            Notification.objects.bulk_create(
                [
                    Notification(
                        recipient_id=m.recipient_id,
                        kind=kind,
                        title=m.title,
                        body=m.body,
                        link=m.link,
                        dedupe_key=dedupe_key,
                        created_at=now,
                    )
                    for m in fresh
                ],
                ignore_conflicts=True,
            )
            # Rows this call inserted carry its ``now``; a concurrent caller's rows do not,
            # and their deliveries are that caller's business.
            created = dict(
                Notification.objects.filter(
                    dedupe_key=dedupe_key, recipient_id__in=[m.recipient_id for m in fresh], created_at=now
                ).values_list("recipient_id", "id")
            )
            deliveries = [
                Delivery(
                    channel=channel,
                    user_id=m.recipient_id,
                    notification_id=created[m.recipient_id],
                    payload=_payload(channel, title=m.title, body=m.body, link=m.link),
                    next_attempt_at=now,
                    created_at=now,
                    dedupe_key=f"{channel}:n{created[m.recipient_id]}",
                )
                for m in fresh
                if m.recipient_id in created
                for channel in channels
            ]
            Delivery.objects.bulk_create(deliveries, ignore_conflicts=True)
            created_total += len(created)
    return created_total


def group_digest_send(*, robot: GroupRobot, digest: GroupDigest, dedupe_key: str) -> bool:
    """Queue ``digest`` for a group robot, once per ``dedupe_key`` (e.g.
    ``"missing:<college>:<date>:<slot>:college"``).  Only a :class:`GroupDigest` — counts
    and a link — can reach a group.  Writes one row inside the caller's transaction;
    returns False when it was queued before or the robot is switched off."""
    if not isinstance(digest, GroupDigest):
        raise TypeError("group robots only take a GroupDigest")
    if not robot.active:
        return False
    key = f"robot{robot.pk}:{dedupe_key}"
    if len(key) > Delivery._meta.get_field("dedupe_key").max_length:
        raise ValueError("dedupe_key too long")
    _, created = Delivery.objects.get_or_create(
        dedupe_key=key,
        defaults={
            "channel": ROBOT_CHANNELS[robot.kind],
            "robot": robot,
            "address": robot.name,
            "payload": digest.as_payload(),
        },
    )
    return created


# ---------------------------------------------------------------------------
# Dispatching the outbox
# ---------------------------------------------------------------------------
def _due(now: dt.datetime):
    return Delivery.objects.filter(status__in=DUE_STATUSES, next_attempt_at__lte=now)


def _lock_candidates(queryset):
    # PostgreSQL: skip rows another dispatcher is claiming right now instead of waiting.
    # SQLite has no row locks; its writes are serialised, and the conditional UPDATE
    # below is what guarantees a single claimer on every database.
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True)
    return queryset


def deliveries_dispatch(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Send every due delivery once; return how many were attempted.

    In-app deliveries are completed set-based (they only stamp rows).  Up to ``limit``
    others are claimed atomically (status → ``sending``, attempts + 1, a lease in
    ``next_attempt_at``), then sent one by one outside any transaction, each outcome
    written back: ``sent`` with ``sent_at``, or ``failed`` with the next attempt after
    :func:`retry_delay`, or ``dead`` with ``last_error``.  Safe to run from several
    workers or beats at once: a claimed delivery matches no other dispatcher's claim.
    ``now`` pins the clock (tests); by default the current time.
    """
    fixed = now is not None
    now = now or timezone.now()

    def clock() -> dt.datetime:
        return now if fixed else timezone.now()

    done = 0
    for channel in CHANNELS.values():
        if channel.bulk:
            done += _dispatch_bulk(channel, now=now)
    _bury_stale(now=now)
    others = [name for name, channel in CHANNELS.items() if not channel.bulk]
    for delivery in _claim(now=now, limit=limit, channels=others):
        _attempt(delivery, clock=clock)
        done += 1
    return done


def _dispatch_bulk(channel, *, now: dt.datetime, chunk: int = 5000) -> int:
    """Complete due deliveries of a database-only channel in one transaction per chunk."""
    total = 0
    while True:
        with transaction.atomic():
            ids = list(
                _lock_candidates(_due(now).filter(channel=channel.name).order_by("id")).values_list("id", flat=True)[
                    :chunk
                ]
            )
            if not ids:
                return total
            claimed = _due(now).filter(id__in=ids)
            channel.send_many(claimed, now)
            updated = claimed.update(
                status=DeliveryStatus.SENT, attempts=F("attempts") + 1, sent_at=now, last_error="", claim=""
            )
        total += updated
        if len(ids) < chunk or not updated:
            return total


def _bury_stale(*, now: dt.datetime) -> None:
    """A delivery whose worker died on its last allowed attempt is given up, not retried
    forever (a message that kills the worker must not kill every worker)."""
    _due(now).filter(status=DeliveryStatus.SENDING, attempts__gte=max_attempts()).update(
        status=DeliveryStatus.DEAD, claim="", last_error="lease expired: the worker stopped while sending"
    )


def _claim(*, now: dt.datetime, limit: int, channels: list[str]) -> list[Delivery]:
    """Claim up to ``limit`` due deliveries for this dispatcher (healthchecks' pattern:
    the UPDATE repeats the due condition, so a row another dispatcher claimed in the
    meantime is not claimed again)."""
    token = uuid.uuid4().hex
    with transaction.atomic():
        ids = list(
            _lock_candidates(_due(now).filter(channel__in=channels).order_by("next_attempt_at", "id")).values_list(
                "id", flat=True
            )[:limit]
        )
        if not ids:
            return []
        _due(now).filter(id__in=ids).update(
            status=DeliveryStatus.SENDING,
            claim=token,
            attempts=F("attempts") + 1,
            next_attempt_at=now + send_lease(),
        )
    return list(Delivery.objects.filter(claim=token).select_related("user", "robot").order_by("id"))


def _attempt(delivery: Delivery, *, clock: Callable[[], dt.datetime]) -> None:
    """Send one claimed delivery and record the outcome (only while we still hold it)."""
    mine = Delivery.objects.filter(pk=delivery.pk, claim=delivery.claim, status=DeliveryStatus.SENDING)
    try:
        CHANNELS[delivery.channel].send(delivery)
    except DeliveryError as exc:
        _record_failure(mine, delivery, error=str(exc), retryable=exc.retryable, now=clock())
    except Exception as exc:  # a bug in one channel must not stop the batch
        logger.exception("delivery %s: unexpected error in channel %s", delivery.pk, delivery.channel)
        _record_failure(mine, delivery, error=f"{type(exc).__name__}: {exc}", retryable=True, now=clock())
    else:
        mine.update(status=DeliveryStatus.SENT, sent_at=clock(), address=delivery.address, last_error="", claim="")


def _record_failure(mine, delivery: Delivery, *, error: str, retryable: bool, now: dt.datetime) -> None:
    if retryable and delivery.attempts < max_attempts():
        status, next_at = DeliveryStatus.FAILED, now + retry_delay(delivery.attempts)
    else:
        status, next_at = DeliveryStatus.DEAD, now
        logger.warning(
            "delivery %s (%s) given up after %s attempts: %s", delivery.pk, delivery.channel, delivery.attempts, error
        )
    mine.update(status=status, next_attempt_at=next_at, last_error=error[:2000], address=delivery.address, claim="")


def deliveries_retry(*, delivery_ids: Iterable[int], now: dt.datetime | None = None) -> int:
    """Admin's "立即重试": put failed or dead deliveries back in the queue as new attempt
    chains, due at once.  The next dispatch run (seconds away) sends them; nothing is
    enqueued from the request.  Returns how many were re-queued."""
    return Delivery.objects.filter(pk__in=list(delivery_ids), status__in=RETRYABLE_STATUSES).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now or timezone.now(), claim=""
    )


# ---------------------------------------------------------------------------
# The inbox
# ---------------------------------------------------------------------------
def notification_mark_read(*, user, notification_id: int) -> Notification:
    """Mark one of ``user``'s notifications read (keeps the first read time) and return it.
    Raises ``Notification.DoesNotExist`` for an id that is not the user's, exactly as for
    one that does not exist, so nobody learns whether someone else's exists."""
    Notification.objects.filter(pk=notification_id, recipient_id=user.pk, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    return Notification.objects.get(pk=notification_id, recipient_id=user.pk)


def notifications_mark_all_read(*, user) -> int:
    """Mark every unread notification of ``user`` read; return how many changed."""
    return Notification.objects.filter(recipient_id=user.pk, read_at__isnull=True).update(read_at=timezone.now())


def notifications_purge(*, older_than: dt.timedelta, now: dt.datetime | None = None, chunk: int = 5000) -> int:
    """Retention: delete notifications and finished deliveries older than ``older_than``
    (a year of daily reminders for 70,000 students is tens of millions of rows).  Pending
    and retrying deliveries are kept.  Deletes in chunks; returns notifications deleted."""
    cutoff = (now or timezone.now()) - older_than
    Delivery.objects.filter(created_at__lt=cutoff, status__in=[DeliveryStatus.SENT, DeliveryStatus.DEAD]).delete()
    deleted = 0
    while True:
        ids = list(Notification.objects.filter(created_at__lt=cutoff).values_list("id", flat=True)[:chunk])
        if not ids:
            return deleted
        with transaction.atomic():
            Delivery.objects.filter(notification_id__in=ids).update(notification=None)
            deleted += Notification.objects.filter(id__in=ids).delete()[0]
