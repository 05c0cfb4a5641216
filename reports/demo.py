"""Check-in data for the demo university and the benchmarks: slots, the reminder
ladder, and a history of daily reports with their nightly roll-ups.

Reports are generated straight into the table — ``COPY`` on PostgreSQL (about 100k
rows a second), ``bulk_create`` elsewhere — with the derived columns the services
would have written (answer digest, flags, late, follow-up).  This is demo and
benchmark data: no history rows are written for it.  The answers are plausible for a
university in term time: most students report on time, a few late, a few through
their counsellor (代报), a handful with a fever.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from campuses.bulk import insert_rows
from campuses.models import Campus
from reports.models import CheckinSlot, DailyReport, FollowUp, ReportSource, SlotCode
from reports.reminder_models import Anchor, ReminderStep, StepKind
from reports.rollup import rollup_compile
from reports.services import ReportAnswer
from students.models import EnrolmentStatus, Student, Whereabouts

#: The slots every campus gets; the noon slot only on the first campus (a campus may
#: have a single slot).
SLOTS = {
    SlotCode.MORNING: (dt.time(6, 0), dt.time(9, 0), dt.time(10, 0)),
    SlotCode.NOON: (dt.time(11, 30), dt.time(14, 0), dt.time(14, 30)),
}
#: The default ladder of each slot: (kind, anchor, minutes).
LADDER = (
    (StepKind.STUDENTS_ALL, Anchor.OPENS, 0),
    (StepKind.STUDENTS_MISSING, Anchor.DUE, -30),
    (StepKind.MONITORS, Anchor.DUE, 0),
    (StepKind.COUNSELLORS, Anchor.DUE, 0),
    (StepKind.COLLEGE_ADMINS, Anchor.DUE, 60),
)


def checkin_setup() -> list[CheckinSlot]:
    """Create the slots and their reminder ladders (idempotent)."""
    slots = []
    for index, campus in enumerate(Campus.objects.order_by("code")):
        for code, (opens, due, closes) in SLOTS.items():
            if code == SlotCode.NOON and index > 0:
                continue
            slot, _ = CheckinSlot.objects.get_or_create(
                campus=campus, code=code, defaults={"opens_at": opens, "due_at": due, "closes_at": closes}
            )
            slots.append(slot)
            for kind, anchor, minutes in LADDER:
                ReminderStep.objects.get_or_create(
                    slot=slot, kind=kind, anchor=anchor, offset_minutes=minutes, defaults={"channels": ["inapp"]}
                )
    return slots


@dataclass
class _Student:
    id: int
    campus_id: int
    college_id: int
    grade_id: int
    school_class_id: int
    whereabouts: str
    province: str
    city: str


_COLUMNS = [f for f in DailyReport._meta.concrete_fields if f.column != "id"]


def _students() -> list[_Student]:
    rows = Student.objects.filter(enrolment_status=EnrolmentStatus.ENROLLED).values_list(
        "id",
        "campus_id",
        "college_id",
        "grade_id",
        "school_class_id",
        "whereabouts",
        "hometown_province",
        "hometown_city",
    )
    return [_Student(*row) for row in rows.order_by("id").iterator(chunk_size=5000)]


class _Digests:
    """Memoised answer digests and flags: most answers repeat."""

    def __init__(self):
        self.cache: dict[tuple, tuple[str, list[str]]] = {}

    def __call__(self, **values) -> tuple[ReportAnswer, str, list[str]]:
        key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in values.items()))
        if key not in self.cache:
            answer = ReportAnswer.clean(**values)
            self.cache[key] = (answer, answer.digest(), [str(f) for f in answer.health_flags()])
        answer, digest, flags = self.cache[key]
        return answer, digest, flags


def generate_reports(
    *, days: list[dt.date], until: dt.datetime | None = None, seed: int = 2026, share: float = 0.95
) -> Iterator[dict]:
    """Rows of DailyReport (as column dicts) for ``days``; on the day of ``until`` only
    the reports submitted before it.  Reads the students and slots now, so that the
    rows can then be streamed into a COPY on the same connection."""
    slots = list(CheckinSlot.objects.filter(active=True))
    by_campus: dict[int, list[CheckinSlot]] = {}
    for slot in slots:
        by_campus.setdefault(slot.campus_id, []).append(slot)
    return _rows(
        days=days, until=until, rng=random.Random(seed), share=share, by_campus=by_campus, students=_students()
    )


def _rows(*, days, until, rng, share, by_campus, students) -> Iterator[dict]:
    tz = timezone.get_default_timezone()
    digests = _Digests()
    temperatures = ["36.2", "36.3", "36.4", "36.5", "36.5", "36.6", "36.6", "36.7", "36.8", "36.9"]
    for day in days:
        for student in students:
            for slot in by_campus.get(student.campus_id, ()):
                if rng.random() > share:
                    continue
                opens = dt.datetime.combine(day, slot.opens_at, tzinfo=tz)
                due = dt.datetime.combine(day, slot.due_at, tzinfo=tz)
                roll = rng.random()
                proxy = roll < 0.02
                if proxy:
                    at = due + dt.timedelta(minutes=rng.randint(5, 240))
                elif roll < 0.07:
                    at = due + dt.timedelta(seconds=rng.randint(1, 3599))
                else:
                    at = opens + dt.timedelta(seconds=rng.randint(0, int((due - opens).total_seconds()) - 1))
                if until is not None and at > until:
                    continue
                fever = rng.random() < 0.003
                values = {
                    "temperature": str(rng.choice(["37.5", "37.8", "38.2"])) if fever else rng.choice(temperatures),
                    "symptoms": ["cough"] if rng.random() < 0.004 else [],
                    "whereabouts": student.whereabouts,
                }
                if student.whereabouts != Whereabouts.ON_CAMPUS:
                    values["province_code"] = student.province or "370000"
                    values["city_code"] = student.city or "370100"
                answer, digest, flags = digests(**values)
                local = at.astimezone(tz)
                yield {
                    "student_id": student.id,
                    "date": day,
                    "slot_id": slot.id,
                    "campus_id": student.campus_id,
                    "college_id": student.college_id,
                    "grade_id": student.grade_id,
                    "school_class_id": student.school_class_id,
                    "temperature": answer.temperature,
                    "symptoms": list(answer.symptoms),
                    "symptoms_other": "",
                    "health_status": answer.health_status,
                    "whereabouts": answer.whereabouts,
                    "province_code": answer.province_code,
                    "city_code": answer.city_code,
                    "risk_area_14d": False,
                    "case_contact": False,
                    "note": "",
                    "client_id": None,
                    "source": ReportSource.PROXY if proxy else ReportSource.SELF,
                    "submitted_by_id": None,
                    "submitted_at": at,
                    "submitted_second": local.hour * 3600 + local.minute * 60 + local.second,
                    "late": at > due,
                    "answer_hash": digest,
                    "flags": flags,
                    "abnormal": bool(flags),
                    "suspected_bot": False,
                    "follow_up": FollowUp.OPEN if flags else FollowUp.NONE,
                    "follow_up_closed_at": None,
                    "follow_up_closed_by_id": None,
                    "created_at": at,
                    "updated_at": at,
                }


def write_reports(rows: Iterator[dict], *, progress: Callable[[int], None] | None = None) -> int:
    """Write generated rows set-based (COPY on PostgreSQL, executemany on SQLite)."""
    counter = {"n": 0}

    def values() -> Iterator[list]:
        for row in rows:
            counter["n"] += 1
            if progress and counter["n"] % 100_000 == 0:
                progress(counter["n"])
            yield [row[f.attname] for f in _COLUMNS]

    return insert_rows(DailyReport, _COLUMNS, values())


def checkin_history(*, days: int, now: dt.datetime | None = None, seed: int = 2026, log=print) -> dict:
    """Slots and ladders, ``days`` days of reports up to now (today: only what was
    submitted before now), and the nightly roll-up of each past day."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    started = time.monotonic()
    with transaction.atomic():
        slots = checkin_setup()
        dates = [today - dt.timedelta(days=n) for n in range(days, -1, -1)]
        count = write_reports(
            generate_reports(days=dates, until=now, seed=seed), progress=lambda n: log(f"  {n:,} 条…")
        )
    written_at = time.monotonic()
    codes = sorted({s.code for s in slots})
    for day in dates[:-1]:
        for code in codes:
            rollup_compile(on=day, slot_code=code)
    return {
        "reports": count,
        "days": len(dates),
        "slots": len(slots),
        "write_seconds": round(written_at - started, 1),
        "rollup_seconds": round(time.monotonic() - written_at, 1),
    }
