"""Writing the outbox: notify() stores each (recipient, event) once, set-based, inside
the caller's transaction, and never talks to the broker."""

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from notifications.models import Delivery, DeliveryStatus, Notification
from notifications.services import OUTBOX_BATCH, Message, notifications_send, notify

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs row locks (PostgreSQL)")


def remind(recipients, key="remind:2026-11-24:1:students_all", channels=("inapp",)):
    return notify(
        recipients=recipients,
        kind="reminder",
        title="晨检已开始，请按时完成打卡",
        body="截止时间 10:00",
        link="/checkin/",
        dedupe_key=key,
        channels=channels,
    )


def test_notify_creates_notification_and_one_delivery_per_channel(alice, bob):
    assert remind([alice, bob.pk], channels=("inapp", "email")) == 2

    assert Notification.objects.filter(dedupe_key="remind:2026-11-24:1:students_all").count() == 2
    note = Notification.objects.get(recipient=alice)
    assert (note.kind, note.title, note.link, note.read_at) == (
        "reminder",
        "晨检已开始，请按时完成打卡",
        "/checkin/",
        None,
    )
    deliveries = Delivery.objects.filter(notification=note).order_by("channel")
    assert [(d.channel, d.user_id, d.status) for d in deliveries] == [
        ("email", alice.pk, DeliveryStatus.PENDING),
        ("inapp", alice.pk, DeliveryStatus.PENDING),
    ]
    assert deliveries[0].payload == {"title": note.title, "body": "截止时间 10:00", "link": "/checkin/"}


def test_notify_twice_creates_nothing_the_second_time(alice, bob):
    assert remind([alice, bob], channels=("inapp", "email")) == 2
    assert remind([alice, bob], channels=("inapp", "email")) == 0

    assert Notification.objects.count() == 2
    assert Delivery.objects.count() == 4


def test_notify_rerun_with_more_recipients_adds_only_the_new_ones(alice, bob, make_user):
    remind([alice])
    carol = make_user()

    assert remind([alice, bob, carol]) == 2
    assert sorted(Notification.objects.values_list("recipient_id", flat=True)) == sorted([alice.pk, bob.pk, carol.pk])
    assert Delivery.objects.count() == 3


def test_recipient_listed_twice_gets_one_notification(alice):
    assert remind([alice, alice.pk, alice]) == 1
    assert Notification.objects.count() == Delivery.objects.count() == 1


def test_another_event_key_is_another_notification(alice):
    remind([alice], key="remind:2026-11-24:1:students_all")
    remind([alice], key="remind:2026-11-24:1:students_missing")
    assert Notification.objects.filter(recipient=alice).count() == 2


def test_per_recipient_content_under_one_event_key(alice, bob):
    created = notifications_send(
        kind="missing_list",
        dedupe_key="missing:2026-11-24:1",
        messages=[Message(alice.pk, "您负责的学生中还有 3 人未完成"), Message(bob.pk, "您负责的学生中还有 5 人未完成")],
    )
    assert created == 2
    assert dict(Notification.objects.values_list("recipient_id", "title")) == {
        alice.pk: "您负责的学生中还有 3 人未完成",
        bob.pk: "您负责的学生中还有 5 人未完成",
    }


def test_notify_refuses_group_robot_channels_and_unknown_kinds(alice):
    with pytest.raises(ValueError, match="group robots take digests"):
        remind([alice], channels=("inapp", "wecom"))
    with pytest.raises(ValueError, match="unknown notification kind"):
        notify(recipients=[alice], kind="gossip", title="x", dedupe_key="k")
    assert Notification.objects.count() == 0


def test_notify_rolls_back_with_the_callers_transaction(alice):
    with pytest.raises(RuntimeError), transaction.atomic():
        remind([alice], channels=("inapp", "email"))
        raise RuntimeError("the business change failed")

    assert Notification.objects.count() == Delivery.objects.count() == 0


def test_notify_never_touches_the_broker(alice, broker_down):
    assert remind([alice], channels=("inapp", "email", "sms")) == 1
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 3


def test_notify_is_set_based(make_user):
    user_model = get_user_model()
    user_model.objects.bulk_create(user_model(username=f"bulk{n}") for n in range(OUTBOX_BATCH + 500))
    ids = list(user_model.objects.filter(username__startswith="bulk").values_list("id", flat=True))

    with CaptureQueriesContext(connection) as ctx:
        assert remind(ids, channels=("inapp", "email")) == len(ids)
    # Per batch of OUTBOX_BATCH recipients: "who has it", insert, read back ids, insert
    # deliveries.  Inserts are multi-row (SQLite splits them by its parameter limit).
    statements = [q["sql"].split()[0] for q in ctx.captured_queries]
    assert statements.count("SELECT") == 2 * 2
    assert len(statements) < len(ids) / 20
    assert Delivery.objects.count() == 2 * len(ids)

    with CaptureQueriesContext(connection) as ctx:
        assert remind(ids, channels=("inapp", "email")) == 0
    assert len(ctx.captured_queries) <= 2 + 2  # one "who has it" per batch, plus the savepoint


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_notify_stores_each_once(make_user):
    """Two runs of the same job at once (two beats, a redelivered task): the second one's
    insert waits for the first's transaction, then conflicts and stores nothing."""
    users = [make_user() for _ in range(20)]
    first_inserted, release_first = threading.Event(), threading.Event()
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def first():
        try:
            with transaction.atomic():
                results["first"] = remind(users, channels=("inapp", "email"))
                first_inserted.set()
                release_first.wait(10)
        except BaseException as exc:
            errors.append(exc)
            first_inserted.set()
        finally:
            connection.close()

    def second():
        try:
            first_inserted.wait(10)
            results["second"] = remind(users, channels=("inapp", "email"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_inserted.wait(10)
    threads[1].join(0.5)  # the second run is now blocked on the first's rows
    release_first.set()
    for thread in threads:
        thread.join(20)

    assert not errors, errors
    assert results == {"first": 20, "second": 0}
    assert Notification.objects.count() == 20
    assert Delivery.objects.count() == 40


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_notify_racing_from_many_threads_stores_each_once(make_user):
    users = [make_user() for _ in range(200)]
    barrier = threading.Barrier(4)
    totals: list[int] = []
    errors: list[BaseException] = []

    def run():
        try:
            barrier.wait(10)
            totals.append(remind(users, channels=("inapp", "email")))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert not errors, errors
    assert sum(totals) == 200
    assert Notification.objects.count() == 200
    assert Delivery.objects.count() == 400


def _ids(*users):
    """A queryset of those users' ids (what a reminder step passes: a query, not a list)."""
    return get_user_model().objects.filter(pk__in=[u.pk for u in users]).values_list("id", flat=True)


def _rows():
    notes = sorted(Notification.objects.values_list("recipient_id", "kind", "title", "body", "link", "dedupe_key"))
    deliveries = sorted(
        (d.channel, d.user_id, d.notification.recipient_id, d.status, d.attempts, d.payload, d.dedupe_key[:7])
        for d in Delivery.objects.select_related("notification")
    )
    return notes, deliveries


def test_notify_from_a_query_writes_what_the_list_writes(alice, bob):
    assert remind([alice, bob], channels=("inapp", "email")) == 2
    by_list = _rows()
    assert all(d.dedupe_key == f"{d.channel}:n{d.notification_id}" for d in Delivery.objects.all())
    Delivery.objects.all().delete()
    Notification.objects.all().delete()

    assert remind(_ids(alice, bob), channels=("inapp", "email")) == 2
    assert _rows() == by_list
    assert all(d.dedupe_key == f"{d.channel}:n{d.notification_id}" for d in Delivery.objects.all())
    assert Notification.objects.filter(created_at__isnull=True).count() == 0


def test_notify_from_a_query_twice_or_with_more_recipients_adds_only_the_new(alice, bob, make_user):
    assert remind(_ids(alice), channels=("inapp", "sms")) == 1
    assert remind(_ids(alice), channels=("inapp", "sms")) == 0
    carol = make_user()
    assert remind(_ids(alice, bob, carol), channels=("inapp", "sms")) == 2
    assert Notification.objects.count() == 3 and Delivery.objects.count() == 6
    # a recipient the query yields twice (a join) gets one notification
    twice = get_user_model().objects.filter(pk=alice.pk).values_list("id", flat=True).union(_ids(alice), all=True)
    assert remind(twice, key="another:event") == 1


def test_notify_from_a_query_rolls_back_and_costs_the_same_statements_at_any_size(alice, make_user):
    with pytest.raises(RuntimeError), transaction.atomic():
        remind(_ids(alice), channels=("inapp", "email"))
        raise RuntimeError("the business change failed")
    assert Notification.objects.count() == Delivery.objects.count() == 0

    user_model = get_user_model()
    user_model.objects.bulk_create(user_model(username=f"q{n}") for n in range(OUTBOX_BATCH + 500))
    everyone = user_model.objects.filter(username__startswith="q").values_list("id", flat=True)
    with CaptureQueriesContext(connection) as ctx:
        assert remind(everyone, channels=("inapp", "email")) == OUTBOX_BATCH + 500
    statements = [q["sql"] for q in ctx.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    # the notifications, how many this call made, the deliveries of each channel
    assert len(statements) == 4, statements
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 2 * (OUTBOX_BATCH + 500)


def test_notify_refuses_a_query_that_is_not_one_column_of_ids(alice):
    users = get_user_model().objects.filter(pk=alice.pk)
    for query in (users, users.values_list("id", "username")):
        with pytest.raises(ValueError, match="one column of user ids"):
            remind(query)
    assert Notification.objects.count() == 0
