"""A day in the persona world for the dashboard tests, and an independent count of
the figures straight from the raw rows (never through the roll-up code).

Campus A has a morning and a noon slot, campus B a morning slot (tests/reports/checkin.py).
Yesterday: most students reported in the morning, one with a fever; the roll-up of
yesterday is compiled.  Today at 09:30: in campus A, student 0 reported, student 1
reported a fever (an open follow-up), student 3 reported, student 4 is excused (in
hospital), students 2 and 5 are missing; in campus B two students reported.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.db.models import Q

from reports.models import CheckinSlot, DailyReport, Excusal, ExcusalReason
from reports.rollup import rollup_compile_day
from students.models import AttentionTag, EnrolmentStatus, KeyAttentionTag, Student
from tests.reports.checkin import local, make_slots, submit, today


@dataclass
class Day:
    today: dt.date
    yesterday: dt.date
    slots: dict


def build_day(world) -> Day:
    """Create yesterday's and today's reports (see the module docstring); the caller
    has moved the clock to today 09:30 local."""
    slots = make_slots(world)
    day = today()
    yesterday = day - dt.timedelta(days=1)
    a, b = world["A"].students, world["B"].students
    # Yesterday: everyone in A but student 5 reported; student 2 with a fever.
    for n, student in enumerate(a[:5]):
        submit(student, when=local(8, n, day=yesterday), temperature="38.2" if n == 2 else "36.5")
    for student in b[:4]:
        submit(student, when=local(8, 30, day=yesterday))
    rollup_compile_day(on=yesterday)
    # Today.
    submit(a[0], when=local(8, 0))
    submit(a[1], when=local(8, 5), temperature="38.1")
    submit(a[3], when=local(8, 10))
    Excusal.objects.create(student=a[4], reason=ExcusalReason.IN_HOSPITAL, starts_on=day)
    submit(b[0], when=local(8, 20))
    submit(b[1], when=local(8, 25))
    KeyAttentionTag.objects.create(
        student=a[1], tag=AttentionTag.FEVER, reason="发热观察", since=day, follow_up_every_days=1
    )
    return Day(today=day, yesterday=yesterday, slots=slots)


# ---------------------------------------------------------------------------
# Independent figures
# ---------------------------------------------------------------------------
def expected_figures(*, on: dt.date, slot_code: str, **unit) -> dict[str, int]:
    """Expected, reported, missing, excused and abnormal for the students matching
    ``unit`` (e.g. ``campus=...``), counted one student at a time from the raw rows."""
    counts = dict.fromkeys(("expected", "reported", "missing", "excused", "abnormal"), 0)
    for student in Student.objects.filter(enrolment_status=EnrolmentStatus.ENROLLED, **unit):
        if not CheckinSlot.objects.filter(campus_id=student.campus_id, code=slot_code, active=True).exists():
            continue
        excused = Excusal.objects.filter(
            Q(ends_on__isnull=True) | Q(ends_on__gte=on), student=student, starts_on__lte=on
        ).exists()
        if excused:
            counts["excused"] += 1
            continue
        counts["expected"] += 1
        report = DailyReport.objects.filter(student=student, date=on, slot__code=slot_code).first()
        if report is None:
            counts["missing"] += 1
        else:
            counts["reported"] += 1
            counts["abnormal"] += int(report.abnormal)
    return counts


# ---------------------------------------------------------------------------
# Reading the page
# ---------------------------------------------------------------------------
_FIGURE = re.compile(r'data-figure="(\w+)"[^>]*>\s*([^<]*)<')


def _figures_in(fragment: str) -> dict[str, str]:
    return {name: value.strip() for name, value in _FIGURE.findall(fragment)}


def card_figures(html: str, slot_code: str) -> dict[str, str]:
    """The figures of a slot card (``data-slot-card``)."""
    start = html.index(f'data-slot-card="{slot_code}"')
    return _figures_in(html[start : html.index("</a>", start)])


def row_figures(html: str, unit_key: str) -> dict[str, str]:
    """The figures of a table row ``<tr data-unit="level:id">``."""
    start = html.index(f'<tr data-unit="{unit_key}"')
    return _figures_in(html[start : html.index("</tr>", start)])


def as_ints(figures: dict[str, str]) -> dict[str, int]:
    return {k: int(v) for k, v in figures.items() if k != "completion"}
