"""The reminder ladder: who each step reaches, once only — dispatched twice, by two
beats at once, or late after an outage."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection

from notifications.models import Delivery, Notification
from reports.models import Excusal, ExcusalReason
from reports.reminder_models import Anchor, ReminderRun, ReminderStep, StepKind
from reports.reminders import reminders_dispatch
from tests.reports.checkin import local, make_slots, submit, today

pytestmark = pytest.mark.django_db


def give_logins(world) -> None:
    """Every world student gets a login (the world gives one per campus)."""
    user_model = get_user_model()
    for key in ("A", "B"):
        for student in world[key].students:
            if student.user_id is None:
                student.user = user_model.objects.create_user(student.student_number, password="x")
                student.save()


@pytest.fixture
def ladder(world):
    slots = make_slots(world)
    give_logins(world)
    morning = slots["A"]["morning"]
    steps = {
        StepKind.STUDENTS_ALL: ReminderStep.objects.create(
            slot=morning, kind=StepKind.STUDENTS_ALL, anchor=Anchor.OPENS
        ),
        StepKind.STUDENTS_MISSING: ReminderStep.objects.create(
            slot=morning, kind=StepKind.STUDENTS_MISSING, anchor=Anchor.DUE, offset_minutes=-30
        ),
        StepKind.MONITORS: ReminderStep.objects.create(slot=morning, kind=StepKind.MONITORS, anchor=Anchor.DUE),
        StepKind.COUNSELLORS: ReminderStep.objects.create(slot=morning, kind=StepKind.COUNSELLORS, anchor=Anchor.DUE),
        StepKind.COLLEGE_ADMINS: ReminderStep.objects.create(
            slot=morning, kind=StepKind.COLLEGE_ADMINS, anchor=Anchor.DUE, offset_minutes=60
        ),
    }
    return steps


def reminded(kind: str = "reminder") -> list[str]:
    return sorted(Notification.objects.filter(kind=kind).values_list("recipient__username", flat=True))


def numbers(students) -> list[str]:
    return sorted(s.student_number for s in students)


def test_nothing_before_the_slot_opens(world, ladder):
    assert reminders_dispatch(now=local(5, 59)) == []
    assert not Notification.objects.exists()


def test_slot_open_reminds_every_expected_student_once(world, ladder):
    Excusal.objects.create(student=world["A"].students[2], reason=ExcusalReason.IN_HOSPITAL, starts_on=today())
    runs = reminders_dispatch(now=local(6, 1))
    assert [r.step.kind for r in runs] == [StepKind.STUDENTS_ALL]
    expected = [s for i, s in enumerate(world["A"].students) if i != 2]
    # the student logins are named after the student numbers, except the world's own
    assert len(reminded()) == len(expected) == runs[0].recipients
    assert "stu_B" not in reminded() and world["B"].students[1].student_number not in reminded()
    assert reminders_dispatch(now=local(6, 2)) == []
    assert reminders_dispatch(now=local(6, 30)) == []
    assert Notification.objects.count() == len(expected)
    assert Delivery.objects.count() == len(expected)


def test_before_due_only_the_missing_are_reminded(world, ladder):
    reminders_dispatch(now=local(6, 1))
    done = world["A"].students[:2]
    for student in done:
        submit(student, when=local(7, 0))
    Notification.objects.all().delete()
    runs = reminders_dispatch(now=local(8, 31))
    assert [r.step.kind for r in runs] == [StepKind.STUDENTS_MISSING]
    told = reminded()
    assert len(told) == 4
    assert not {s.user.username for s in done} & set(told)


def test_due_time_sends_staff_their_own_missing_counts(world, ladder):
    for student in world["A"].students[:2]:  # both in class 1
        submit(student, when=local(7, 0))
    reminders_dispatch(now=local(9, 0))
    staff = {n.recipient.username: n.title for n in Notification.objects.filter(kind="missing_list")}
    assert set(staff) == {"counsellor_A", "monitor_A"}
    assert "4 人" in staff["counsellor_A"]  # the whole grade: 6 expected, 2 reported
    assert "1 人" in staff["monitor_A"]  # class 1: 3 expected, 2 reported
    for title in staff.values():  # counts and a link only: no names
        assert not any(s.name in title for s in world["A"].students)
    reminders_dispatch(now=local(10, 1))
    assert set(reminded("missing_list")) == {"counsellor_A", "monitor_A", "college_A"}


def test_student_steps_are_skipped_after_the_slot_closes(world, ladder):
    runs = {r.step.kind: r for r in reminders_dispatch(now=local(10, 30))}
    assert runs[StepKind.STUDENTS_ALL].skipped_reason
    assert runs[StepKind.STUDENTS_MISSING].skipped_reason
    assert not Notification.objects.filter(kind="reminder").exists()
    assert runs[StepKind.COUNSELLORS].recipients == 1


def test_missed_steps_go_out_once_after_an_outage(world, ladder):
    # beat could not reach the broker from 06:00 to 08:45: the next dispatch catches up
    runs = reminders_dispatch(now=local(8, 45))
    assert sorted(r.step.kind for r in runs) == sorted([StepKind.STUDENTS_ALL, StepKind.STUDENTS_MISSING])
    assert len(reminders_dispatch(now=local(8, 46))) == 0
    per_student = Notification.objects.filter(kind="reminder").values_list("recipient_id", flat=True)
    assert len(per_student) == 2 * len(world["A"].students)  # two distinct steps, once each
    assert ReminderRun.objects.count() == 2


def test_two_dispatchers_at_once_send_each_step_once(world, ladder, transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent transactions (PostgreSQL); SQLite serialises writers")
    barrier = threading.Barrier(2)
    errors = []

    def run():
        try:
            barrier.wait()
            reminders_dispatch(now=local(9, 5))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert ReminderRun.objects.count() == 4  # all but the college step (10:00)
    assert Notification.objects.filter(kind="reminder").count() == 2 * len(world["A"].students)
    assert sorted(reminded("missing_list")) == ["counsellor_A", "monitor_A"]


@pytest.mark.parametrize("extra", [0, 60])
def test_student_step_costs_the_same_queries_at_any_size(world, ladder, extra, django_assert_num_queries):
    from students.models import Gender, Student

    user_model = get_user_model()
    for n in range(extra):
        Student.objects.create(
            student_number=f"6{n:05d}",
            name=f"加{n}",
            gender=Gender.FEMALE,
            school_class=world["A"].classes[n % 2],
            user=user_model.objects.create(username=f"6{n:05d}"),
        )
    ladder[StepKind.STUDENTS_ALL].delete()
    # the same statements for 6 or 66 students: none per student
    with django_assert_num_queries(11):  # the outbox written by INSERT … SELECT (3 statements)
        reminders_dispatch(now=local(8, 31))
    assert len(reminded()) == len(world["A"].students) + extra


def test_robot_channels_are_refused_on_a_personal_step(world, ladder):
    step = ladder[StepKind.STUDENTS_ALL]
    step.channels = ["inapp", "wecom"]
    with pytest.raises(ValidationError):
        step.full_clean()
    step.save()  # saved around the form: the dispatcher still never sends to a robot
    reminders_dispatch(now=local(6, 1))
    assert set(Delivery.objects.values_list("channel", flat=True)) == {"inapp"}


def test_college_step_sends_its_group_robot_counts_and_a_link_only(world, ladder):
    from notifications.models import GroupRobot

    robot = GroupRobot.objects.create(
        name="法学院辅导员群",
        kind="wecom",
        webhook_url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
        college=world["A"].college,
    )
    GroupRobot.objects.create(
        name="另一个学院",
        kind="dingtalk",
        webhook_url="https://oapi.dingtalk.com/robot/send?access_token=t",
        college=world["B"].college,
    )
    submit(world["A"].students[0], when=local(7, 0))
    reminders_dispatch(now=local(10, 5))
    reminders_dispatch(now=local(10, 6))  # a second run adds nothing
    (delivery,) = Delivery.objects.filter(channel="wecom")
    assert delivery.robot_id == robot.pk
    counts = delivery.payload["counts"]
    assert sum(n for label, n in counts.items() if label != "合计") == counts["合计"] == 5
    assert delivery.payload["link"].startswith("/dashboard/?date=")
    text = str(delivery.payload)
    for student in world["A"].students:
        assert student.name not in text and student.student_number not in text and student.phone not in text
    assert not Delivery.objects.filter(channel="dingtalk").exists()
