"""Helpers for the check-in tests: slots for the persona world, local times, answers,
API clients.  The world's campus A has a morning and a noon slot, campus B only a
morning slot (a campus may have one slot)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.utils import timezone
from rest_framework.test import APIClient

from reports.models import CheckinSlot, SlotCode
from reports.services import ReportAnswer, report_submit

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


def client_for(user, *, language: str | None = None) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE=language) if language else APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def codes(response, field: str) -> list[str]:
    """The error codes of ``field`` in an error answer."""
    return [error["code"] for error in response.json()["errors"].get(field, [])]
