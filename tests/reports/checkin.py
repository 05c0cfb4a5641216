"""Helpers for the check-in tests: slots for the persona world, local times, answers,
API clients, the missing list's details.  The world's campus A has a morning and a noon slot, campus B only a
morning slot (a campus may have one slot)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from campuses.models import Assignment, Role
from reports.models import CheckinSlot, SlotCode
from reports.services import ReportAnswer, report_submit
from students.models import ContactLog

TZ = ZoneInfo("Asia/Shanghai")


def today() -> dt.date:
    return timezone.localdate()


def local(hour: int, minute: int = 0, second: int = 0, *, day: dt.date | None = None) -> dt.datetime:
    """An aware instant at local time hour:minute:second on ``day`` (default today)."""
    return dt.datetime.combine(day or today(), dt.time(hour, minute, second), tzinfo=TZ)


def make_slots(world) -> dict[str, dict[str, CheckinSlot]]:
    """Morning 06:00–10:00 (due 09:00) on both campuses; noon 11:30–14:30 (due 14:00) on A."""
    slots: dict[str, dict[str, CheckinSlot]] = {}
    for key in ("A", "B"):
        campus = world[key].campus
        slots[key] = {
            SlotCode.MORNING: CheckinSlot.objects.create(
                campus=campus, code=SlotCode.MORNING, opens_at="06:00", due_at="09:00", closes_at="10:00"
            )
        }
    slots["A"][SlotCode.NOON] = CheckinSlot.objects.create(
        campus=world["A"].campus, code=SlotCode.NOON, opens_at="11:30", due_at="14:00", closes_at="14:30"
    )
    return slots


def answer(**overrides) -> dict:
    """A healthy on-campus morning answer, as the app posts it."""
    data = {
        "slot": "morning",
        "temperature": "36.5",
        "symptoms": [],
        "health_status": "healthy",
        "whereabouts": "on_campus",
        "risk_area_14d": False,
        "case_contact": False,
        "note": "",
    }
    data.update(overrides)
    return data


def submit(student, *, when: dt.datetime | None = None, slot: str = "morning", **answer_values):
    """Submit through the service, as the student, at ``when`` (default 08:00 today)."""
    when = when or local(8, 0)
    values = {"temperature": "36.5", **answer_values}
    return report_submit(
        student=student,
        slot_code=slot,
        answer=ReportAnswer.clean(**values),
        on=when.date(),
        by=student.user,
        now=when,
    )


def client_for(user, *, language: str | None = None, bearer: bool = False) -> APIClient:
    """An API client signed in as ``user``: authentication forced (the account is the
    one given, nothing read), or with ``bearer`` an access token as the app sends it —
    valid for a day, as tests move the clock by hours."""
    client = APIClient(HTTP_ACCEPT_LANGUAGE=language) if language else APIClient()
    if user is not None and bearer:
        token = AccessToken.for_user(user)
        token.set_exp(lifetime=dt.timedelta(days=1))
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    elif user is not None:
        client.force_authenticate(user)
    return client


def codes(response, field: str) -> list[str]:
    """The error codes of ``field`` in an error answer."""
    return [error["code"] for error in response.json()["errors"].get(field, [])]


@dataclass(frozen=True)
class Details:
    """What the missing list says of a student beside the name: the responsible
    counsellor and the last contact (None where there is none)."""

    counsellor: str
    contacted_at: dt.datetime | None = None
    channel: str | None = None
    outcome: str | None = None
    by: str | None = None


def counsellors_and_contacts(world) -> dict[str, Details]:
    """Campus A's missing-list details, made so that each rule shows: the grade's
    counsellor is 王老师; class 2 has a counsellor of its own (李老师: a class's counsellor
    comes before the grade's) and, assigned before him, one whose duty ended yesterday
    and one whose duty starts tomorrow (neither responsible today, both first by id).
    Student 2 was contacted twice (the later entry, by 王老师, is the last), student 3
    by a counsellor without a name (shown by username), student 5 by nobody recorded.
    Returns today's details by student number, for every student of campus A."""
    a = world["A"]
    user_model = type(a.counsellor)
    a.counsellor.last_name, a.counsellor.first_name = "王", "老师"
    a.counsellor.save()
    klass = a.classes[1]
    yesterday, tomorrow = today() - dt.timedelta(days=1), today() + dt.timedelta(days=1)
    not_today = (("ended_A2", "赵", {"valid_to": yesterday}), ("next_A2", "钱", {"valid_from": tomorrow}))
    for username, last, valid in not_today:
        user = user_model.objects.create(username=username, last_name=last, first_name="老师")
        Assignment.objects.create(user=user, role=Role.COUNSELLOR, school_class=klass, **valid)
    class_counsellor = user_model.objects.create(username="counsellor_A2", last_name="李", first_name="老师")
    Assignment.objects.create(user=class_counsellor, role=Role.COUNSELLOR, school_class=klass)
    unnamed = user_model.objects.create(username="duty_A_nameless")
    s = a.students
    ContactLog.objects.create(student=s[2], contacted_at=local(7, 0), outcome="not_reached", contacted_by=unnamed)
    ContactLog.objects.create(student=s[2], contacted_at=local(8, 0), outcome="reached", contacted_by=a.counsellor)
    ContactLog.objects.create(student=s[3], contacted_at=local(7, 30), channel="message", contacted_by=unnamed)
    ContactLog.objects.create(student=s[5], contacted_at=local(6, 45), channel="visit", outcome="not_reached")
    details = {
        student.student_number: Details("李老师" if student.school_class_id == klass.pk else "王老师") for student in s
    }
    details[s[2].student_number] = Details("王老师", local(8, 0), "phone", "reached", "王老师")
    details[s[3].student_number] = Details("李老师", local(7, 30), "message", "reached", "duty_A_nameless")
    details[s[5].student_number] = Details("李老师", local(6, 45), "visit", "not_reached", None)
    return details
