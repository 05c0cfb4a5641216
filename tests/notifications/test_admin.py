"""The admin: who sees which notifications, failed deliveries visible to the
university admin with "立即重试", group robots with their credentials masked."""

import pytest
from django.urls import reverse

from notifications.models import Delivery, DeliveryStatus, GroupRobot, GroupRobotKind, Notification
from notifications.services import notify

pytestmark = pytest.mark.django_db

NOTIFICATIONS = "admin:notifications_notification_changelist"
DELIVERIES = "admin:notifications_delivery_changelist"
ROBOTS = "admin:notifications_grouprobot_changelist"


def changelist(client, user, name, **params):
    client.force_login(user)
    return client.get(reverse(name), params)


@pytest.fixture
def inboxes(world):
    a = world["A"]
    notify(recipients=[a.counsellor], kind="missing_list", title="给辅导员的未报名单", dedupe_key="k1")
    notify(recipients=[a.college_admin], kind="missing_list", title="给学院的未报名单", dedupe_key="k2")
    return world


def test_university_admin_sees_every_notification(client, inboxes):
    response = changelist(client, inboxes.uni_admin, NOTIFICATIONS)
    assert {n.title for n in response.context["cl"].result_list} == {"给辅导员的未报名单", "给学院的未报名单"}


def test_staff_sees_only_their_own_notifications(client, inboxes):
    response = changelist(client, inboxes["A"].counsellor, NOTIFICATIONS)
    assert [n.title for n in response.context["cl"].result_list] == ["给辅导员的未报名单"]
    foreign = Notification.objects.get(title="给学院的未报名单")
    opened = client.get(reverse("admin:notifications_notification_change", args=[foreign.pk]))
    assert opened.status_code == 302  # the admin's "does not exist" redirect


def test_notifications_are_read_only_in_the_admin(client, inboxes):
    client.force_login(inboxes.uni_admin)
    assert client.get(reverse("admin:notifications_notification_add")).status_code == 403


@pytest.fixture
def failed_deliveries(world):
    a = world["A"]
    notify(recipients=[a.counsellor, a.college_admin], kind="system", title="x", dedupe_key="k", channels=("email",))
    dead, failed = Delivery.objects.order_by("id")
    dead.status, dead.attempts, dead.last_error = DeliveryStatus.DEAD, 6, "SMTP 550 mailbox unavailable"
    dead.save()
    failed.status, failed.attempts, failed.last_error = DeliveryStatus.FAILED, 2, "timed out"
    failed.save()
    return dead, failed


def test_failed_deliveries_are_visible_to_the_university_admin(client, world, failed_deliveries):
    dead, _failed = failed_deliveries
    response = changelist(client, world.uni_admin, DELIVERIES, status="dead")
    assert list(response.context["cl"].result_list) == [dead]
    assert "SMTP 550 mailbox unavailable" in response.content.decode()


@pytest.mark.parametrize("persona", ["coordinator", "college_admin", "counsellor"])
def test_deliveries_are_closed_to_everyone_else(client, world, failed_deliveries, persona):
    client.force_login(getattr(world["A"], persona))
    assert client.get(reverse(DELIVERIES)).status_code == 403


def test_retry_now_action_requeues_failed_and_dead(client, world, failed_deliveries):
    dead, failed = failed_deliveries
    client.force_login(world.uni_admin)

    response = client.post(
        reverse(DELIVERIES), {"action": "retry_now", "_selected_action": [dead.pk, failed.pk]}, follow=True
    )

    assert response.status_code == 200
    assert "2 条发送记录已重新排队" in response.content.decode()
    assert set(Delivery.objects.values_list("status", "attempts")) == {(DeliveryStatus.PENDING, 0)}


def test_group_robots_are_for_the_university_admin_with_secrets_masked(client, world):
    GroupRobot.objects.create(
        name="学工部值班群",
        kind=GroupRobotKind.DINGTALK,
        webhook_url="https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef0123456789",
        secret="SEC0123456789abcdef",
        campus=world["A"].campus,
    )

    html = changelist(client, world.uni_admin, ROBOTS).content.decode()
    assert "学工部值班群" in html
    assert "0123456789abcdef0123456789" not in html
    assert "SEC0123456789abcdef" not in html

    client.force_login(world["A"].coordinator)
    assert client.get(reverse(ROBOTS)).status_code == 403


def test_admin_pages_open(client, world, failed_deliveries, inboxes):
    dead, _failed = failed_deliveries
    client.force_login(world.uni_admin)
    own = Notification.objects.first()
    assert client.get(reverse("admin:notifications_delivery_change", args=[dead.pk])).status_code == 200
    assert client.get(reverse("admin:notifications_notification_change", args=[own.pk])).status_code == 200
    assert client.get(reverse("admin:notifications_grouprobot_add")).status_code == 200
