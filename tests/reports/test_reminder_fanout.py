"""The reminder dispatch hands each due step to a task of its own when several are due
(every campus's round at 06:00), so a worker's processes send them side by side; a
step whose task cannot be enqueued is sent by the dispatch itself, and a step handed
on twice is sent once."""

from __future__ import annotations

from unittest import mock

import pytest
from celery import Task

from notifications.models import Notification
from reports.reminder_models import Anchor, ReminderRun, ReminderStep, StepKind
from reports.tasks import reminder_step_task, reminders_dispatch_task
from tests.reports.checkin import local, make_slots
from tests.reports.test_reminders import give_logins

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_campus_round(world):
    slots = make_slots(world)
    give_logins(world)
    return [
        ReminderStep.objects.create(slot=slots[key]["morning"], kind=StepKind.STUDENTS_ALL, anchor=Anchor.OPENS)
        for key in ("A", "B")
    ]


def _told(world, key: str) -> list[int]:
    users = {s.user_id for s in world[key].students}
    return sorted(n.recipient_id for n in Notification.objects.filter(kind="reminder") if n.recipient_id in users)


def _enqueued(apply_async) -> list[tuple[str, dict]]:
    """(task name, its kwargs) of each mocked ``apply_async`` call."""
    return [(c.args[0].name, c.kwargs.get("kwargs") or {}) for c in apply_async.call_args_list]


def test_several_due_steps_each_go_to_their_own_task(world, two_campus_round):
    at = local(6, 1)
    with mock.patch.object(Task, "apply_async", autospec=True) as apply_async:
        assert reminders_dispatch_task(now=at.isoformat()) == 2

        assert ReminderRun.objects.count() == 0  # nothing sent by the dispatch itself
        handed = [kwargs for name, kwargs in _enqueued(apply_async)]
        assert {name for name, _kwargs in _enqueued(apply_async)} == {"reports.reminder_step"}
        assert sorted(h["step_id"] for h in handed) == sorted(s.pk for s in two_campus_round)
        assert {h["now"] for h in handed} == {at.isoformat()}

        apply_async.reset_mock()
        sent = [reminder_step_task(**h) for h in handed + handed]  # a second dispatch's copies too
        assert sent == [True, True, False, False]
        # Each round, once committed, has its deliveries dispatched at once.
        assert _enqueued(apply_async) == [("notifications.deliveries_dispatch", {})] * 2
    assert sorted(ReminderRun.objects.values_list("step_id", flat=True)) == sorted(s.pk for s in two_campus_round)
    for key in ("A", "B"):
        assert _told(world, key) == sorted(s.user_id for s in world[key].students)


def test_a_step_whose_task_cannot_be_enqueued_is_sent_by_the_dispatch(world, two_campus_round):
    fails_for = two_campus_round[1].pk

    def publish(task, *args, **kwargs):
        if (kwargs.get("kwargs") or {}).get("step_id") == fails_for:
            raise ConnectionError("broker unreachable")

    with mock.patch.object(Task, "apply_async", autospec=True, side_effect=publish) as apply_async:
        assert reminders_dispatch_task(now=local(6, 1).isoformat()) == 2
    assert [name for name, _kwargs in _enqueued(apply_async)] == [
        "reports.reminder_step",
        "reports.reminder_step",
        "notifications.deliveries_dispatch",  # after the step it sent itself
    ]

    assert list(ReminderRun.objects.values_list("step_id", flat=True)) == [fails_for]
    assert _told(world, "B") == sorted(s.user_id for s in world["B"].students)
    assert _told(world, "A") == []


def test_one_due_step_is_sent_where_it_is(world, two_campus_round):
    two_campus_round[1].delete()
    with mock.patch.object(Task, "apply_async", autospec=True) as apply_async:
        assert reminders_dispatch_task(now=local(6, 1).isoformat()) == 1
    assert _enqueued(apply_async) == [("notifications.deliveries_dispatch", {})]
    assert list(ReminderRun.objects.values_list("step_id", flat=True)) == [two_campus_round[0].pk]


def test_a_step_no_longer_due_is_not_sent(world, two_campus_round):
    step = two_campus_round[0]
    step.active = False
    step.save()
    assert reminder_step_task(step_id=step.pk, now=local(6, 1).isoformat()) is False
    assert not ReminderRun.objects.exists()
