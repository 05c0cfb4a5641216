"""Dispatching the outbox: each delivery is sent once however the dispatcher is run,
failures back off and end dead with their error, admins can re-queue them."""

import datetime as dt
import threading

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from notifications import channels as channels_module
from notifications.channels import Channel, DeliveryError
from notifications.models import Delivery, DeliveryStatus, Notification
from notifications.services import deliveries_dispatch, deliveries_retry, notifications_purge, notify, retry_delay
from notifications.tasks import deliveries_dispatch_task

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs row locks (PostgreSQL)")

T0 = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)


class Recorder(Channel):
    """A fake external channel: records what it sent, optionally failing or re-entering."""

    def __init__(self, *, error: DeliveryError | Exception | None = None, during=None):
        self.sent: list[int] = []
        self.error = error
        self.during = during
        self.lock = threading.Lock()

    def send(self, delivery):
        if self.during is not None:
            during, self.during = self.during, None
            during()
        if self.error is not None:
            raise self.error
        with self.lock:
            self.sent.append(delivery.pk)


@pytest.fixture
def email_channel(monkeypatch):
    """Replace the e-mail channel by a recorder (what is sent, how often)."""

    def install(**kwargs) -> Recorder:
        recorder = Recorder(**kwargs)
        monkeypatch.setitem(channels_module.CHANNELS, "email", recorder)
        return recorder

    return install


def queue_emails(users, key="remind:1"):
    notify(recipients=users, kind="reminder", title="请打卡", dedupe_key=key, channels=("email",))
    return list(Delivery.objects.filter(channel="email").order_by("id").values_list("id", flat=True))


def test_dispatch_run_twice_sends_each_delivery_once(email_channel, alice, bob):
    recorder = email_channel()
    ids = queue_emails([alice, bob])

    assert deliveries_dispatch() == 2
    assert deliveries_dispatch() == 0

    assert sorted(recorder.sent) == ids
    assert set(Delivery.objects.values_list("status", "attempts")) == {(DeliveryStatus.SENT, 1)}
    assert Delivery.objects.filter(sent_at__isnull=True).count() == 0


def test_dispatch_interleaved_with_another_run_sends_each_once(email_channel, make_user):
    """A second dispatcher starts while the first is half-way through its batch."""
    users = [make_user() for _ in range(5)]
    inner: list[int] = []
    recorder = email_channel(during=lambda: inner.append(deliveries_dispatch(limit=10)))
    ids = queue_emails(users)

    outer = deliveries_dispatch(limit=2)  # claims two; the inner run takes the other three

    assert (outer, inner) == (2, [3])
    assert sorted(recorder.sent) == ids
    assert deliveries_dispatch() == 0


def test_task_twice_sends_once(email_channel, alice):
    recorder = email_channel()
    ids = queue_emails([alice])

    deliveries_dispatch_task.apply()
    deliveries_dispatch_task.apply(kwargs={"now": timezone.now().isoformat()})

    assert recorder.sent == ids


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_dispatchers_send_each_delivery_once(email_channel, make_user):
    users = [make_user() for _ in range(60)]
    recorder = email_channel()
    ids = queue_emails(users)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker():
        try:
            barrier.wait(10)
            while deliveries_dispatch(limit=7):
                pass
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not errors, errors
    assert sorted(recorder.sent) == ids  # every one, none twice
    assert set(Delivery.objects.values_list("status", "attempts")) == {(DeliveryStatus.SENT, 1)}


def test_inapp_dispatch_marks_notifications_delivered_set_based(make_user):
    users = [make_user() for _ in range(30)]
    notify(recipients=users, kind="reminder", title="请打卡", dedupe_key="k")

    assert deliveries_dispatch() == 30
    assert deliveries_dispatch() == 0

    assert Notification.objects.filter(delivered_at__isnull=True).count() == 0
    assert set(Delivery.objects.values_list("status", "attempts")) == {(DeliveryStatus.SENT, 1)}


def test_failures_back_off_exponentially_then_die_with_last_error(email_channel, alice, settings):
    settings.TONGXIN = {**settings.TONGXIN, "NOTIFY_MAX_ATTEMPTS": 6}
    email_channel(error=DeliveryError("SMTP 451 temporary failure", retryable=True))
    [delivery_id] = queue_emails([alice])

    now = timezone.now()
    waits = []
    for attempt in range(1, 7):
        assert deliveries_dispatch(now=now) == 1
        delivery = Delivery.objects.get(pk=delivery_id)
        assert delivery.attempts == attempt
        assert delivery.last_error == "SMTP 451 temporary failure"
        if attempt < 6:
            assert delivery.status == DeliveryStatus.FAILED
            waits.append(delivery.next_attempt_at - now)
            # Not due a moment before its time, due at it.
            assert deliveries_dispatch(now=delivery.next_attempt_at - dt.timedelta(seconds=1)) == 0
            now = delivery.next_attempt_at
    assert waits == [dt.timedelta(minutes=m) for m in (1, 2, 4, 8, 16)]
    assert delivery.status == DeliveryStatus.DEAD
    assert delivery.sent_at is None
    assert deliveries_dispatch(now=now + dt.timedelta(days=1)) == 0


def test_retry_delay_is_capped():
    assert retry_delay(1) == dt.timedelta(minutes=1)
    assert retry_delay(20) == dt.timedelta(hours=1)


def test_permanent_error_is_dead_at_once(email_channel, alice):
    email_channel(error=DeliveryError("no such mailbox", retryable=False))
    [delivery_id] = queue_emails([alice])

    deliveries_dispatch()

    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts, delivery.last_error) == (DeliveryStatus.DEAD, 1, "no such mailbox")


def test_bug_in_a_channel_is_recorded_and_retried_without_stopping_the_batch(email_channel, monkeypatch, alice):
    email_channel(error=KeyError("oops"))
    [email_id] = queue_emails([alice])
    notify(recipients=[alice], kind="system", title="x", dedupe_key="other", channels=("inapp",))

    assert deliveries_dispatch() == 2

    email = Delivery.objects.get(pk=email_id)
    assert email.status == DeliveryStatus.FAILED and "KeyError" in email.last_error
    assert Delivery.objects.get(channel="inapp").status == DeliveryStatus.SENT


def test_delivery_of_a_worker_that_died_is_picked_up_after_its_lease(email_channel, alice):
    recorder = email_channel()
    [delivery_id] = queue_emails([alice])
    # A worker claimed it and died before recording anything.
    Delivery.objects.filter(pk=delivery_id).update(
        status=DeliveryStatus.SENDING, attempts=1, claim="dead-worker", next_attempt_at=T0 + dt.timedelta(minutes=5)
    )

    assert deliveries_dispatch(now=T0 + dt.timedelta(minutes=4)) == 0  # still leased
    assert deliveries_dispatch(now=T0 + dt.timedelta(minutes=5)) == 1

    assert recorder.sent == [delivery_id]
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)


def test_delivery_that_kills_workers_is_given_up_after_max_attempts(email_channel, alice):
    recorder = email_channel()
    [delivery_id] = queue_emails([alice])
    Delivery.objects.filter(pk=delivery_id).update(status=DeliveryStatus.SENDING, attempts=6, next_attempt_at=T0)

    assert deliveries_dispatch(now=T0 + dt.timedelta(minutes=1)) == 0

    assert recorder.sent == []
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == DeliveryStatus.DEAD and "lease expired" in delivery.last_error


def test_retry_now_requeues_failed_and_dead_only(email_channel, alice, bob, make_user):
    email_channel(error=DeliveryError("down", retryable=False))
    dead_id, sent_id = queue_emails([alice, bob])
    Delivery.objects.filter(pk=sent_id).update(status=DeliveryStatus.SENT)
    deliveries_dispatch()
    assert Delivery.objects.get(pk=dead_id).status == DeliveryStatus.DEAD

    assert deliveries_retry(delivery_ids=[dead_id, sent_id]) == 1

    delivery = Delivery.objects.get(pk=dead_id)
    assert (delivery.status, delivery.attempts, delivery.last_error) == (DeliveryStatus.PENDING, 0, "down")
    recorder = email_channel()
    deliveries_dispatch()
    assert recorder.sent == [dead_id]
    assert Delivery.objects.get(pk=dead_id).status == DeliveryStatus.SENT


def test_email_channel_sends_through_django_mail(alice, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.TONGXIN = {**settings.TONGXIN, "SITE_URL": "https://tongxin.example.edu.cn/"}
    notify(
        recipients=[alice],
        kind="missing_list",
        title="晨检未报名单",
        body="您负责的学生中还有 3 人未完成",
        link="/reports/missing/",
        dedupe_key="k",
        channels=("email",),
    )

    deliveries_dispatch()

    [message] = mail.outbox
    assert message.to == [alice.email]
    assert message.subject == "晨检未报名单"
    assert "https://tongxin.example.edu.cn/reports/missing/" in message.body
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.address) == (DeliveryStatus.SENT, alice.email)


def test_email_to_user_without_address_is_dead_with_reason(make_user, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    user = make_user(email="")
    notify(recipients=[user], kind="system", title="x", dedupe_key="k", channels=("email",))

    deliveries_dispatch()

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DEAD
    assert delivery.last_error == "接收人没有登记邮箱"
    assert mail.outbox == []


class FakeGateway:
    sent: list[tuple[str, str]] = []

    def send(self, *, phone, text):
        FakeGateway.sent.append((phone, text))


def test_sms_goes_through_the_configured_gateway_to_the_students_phone(world, settings):
    settings.TONGXIN = {**settings.TONGXIN, "SMS_GATEWAY": "tests.notifications.test_dispatch.FakeGateway"}
    FakeGateway.sent = []
    student = world["A"].student
    notify(
        recipients=[student.user], kind="reminder", title="请打卡", body="截止 10:00", dedupe_key="k", channels=("sms",)
    )

    deliveries_dispatch()

    assert FakeGateway.sent == [(student.phone, "请打卡：截止 10:00")]
    assert Delivery.objects.get().status == DeliveryStatus.SENT


def test_sms_default_gateway_logs_with_masked_phone(world, caplog):
    student = world["A"].student
    notify(recipients=[student.user], kind="reminder", title="请打卡", dedupe_key="k", channels=("sms",))

    with caplog.at_level("INFO", logger="notifications.channels"):
        deliveries_dispatch()

    assert student.phone not in caplog.text
    assert f"{student.phone[:3]}****{student.phone[-4:]}" in caplog.text
    assert Delivery.objects.get().status == DeliveryStatus.SENT


def test_sms_to_staff_without_phone_is_dead(world):
    notify(recipients=[world["A"].counsellor], kind="system", title="x", dedupe_key="k", channels=("sms",))
    deliveries_dispatch()
    assert Delivery.objects.get().status == DeliveryStatus.DEAD


def test_purge_drops_old_notifications_and_finished_deliveries_only(alice):
    notify(recipients=[alice], kind="reminder", title="old", dedupe_key="old", channels=("inapp", "email"))
    notify(recipients=[alice], kind="reminder", title="new", dedupe_key="new", channels=("inapp",))
    year_ago = timezone.now() - dt.timedelta(days=400)
    Notification.objects.filter(dedupe_key="old").update(created_at=year_ago)
    Delivery.objects.filter(notification__dedupe_key="old").update(created_at=year_ago)
    Delivery.objects.filter(notification__dedupe_key="old", channel="inapp").update(status=DeliveryStatus.SENT)

    assert notifications_purge(older_than=dt.timedelta(days=365)) == 1

    assert list(Notification.objects.values_list("title", flat=True)) == ["new"]
    # The old e-mail is still pending: kept (detached from its notification) until it is sent.
    assert sorted(Delivery.objects.values_list("channel", "notification__title")) == [
        ("email", None),
        ("inapp", "new"),
    ]
