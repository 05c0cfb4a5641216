"""Every dashboard page costs a fixed number of queries whatever the size of the
scope: each page is measured on a campus of one class and three students, then the
same campus is grown to 26 classes (20 of them in the counsellor's grade) with 30
students each, reports, excusals, tags and contacts, and the page must cost exactly
the same number of queries (zulip's assert_database_query_count) — but for the count of
a list whose first page has filled, one statement per list."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campuses.models import Assignment, Campus, College, Grade, Role, SchoolClass
from reports.models import CheckinSlot, Excusal, ExcusalReason
from reports.rollup import rollup_compile_day
from reports.rollup_models import SignOff, SignOffState
from students.models import AttentionTag, ContactLog, Gender, KeyAttentionTag, Student
from tests.reports.checkin import local, submit, today
from tests.world import PASSWORD

pytestmark = pytest.mark.django_db

#: Query counts must never grow past this, whatever the page.
CEILING = 30
#: The most lists one page shows (a live unit page: missing, abnormal, follow-ups).
LISTS_PER_PAGE = 3


@dataclass
class Campus1:
    campus: Campus
    college: College
    grade: Grade
    first_class: SchoolClass
    first_student: Student
    coordinator: object
    counsellor: object
    monitor: object
    seq: int = 0


def _user(username: str, role: str, **unit):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD, is_staff=True)
    Assignment.objects.create(user=user, role=role, **unit)
    return user


def _students(c: Campus1, klass: SchoolClass, n: int) -> list[Student]:
    out = []
    for _ in range(n):
        c.seq += 1
        out.append(
            Student.objects.create(
                student_number=f"Q{c.seq:07d}",
                name=f"测{c.seq}",
                gender=Gender.FEMALE,
                school_class=klass,
                phone=f"139{c.seq:08d}",
                id_number=f"37010120050101{c.seq:04d}",
            )
        )
    return out


def _activity(c: Campus1, students: list[Student], rng: random.Random) -> None:
    """Reports yesterday and today (some late, feverish, missing), excusals, tags and
    contacts, so that every list of every page has rows."""
    yesterday = today() - dt.timedelta(days=1)
    for student in students:
        roll = rng.random()
        if roll < 0.1:
            Excusal.objects.create(student=student, reason=ExcusalReason.ON_LEAVE, starts_on=yesterday)
            continue
        for day in (yesterday, today()):
            if rng.random() < 0.2:
                continue  # missing
            fever = rng.random() < 0.15
            submit(student, when=local(8, rng.randint(0, 50), day=day), temperature="38.0" if fever else "36.5")
        if roll > 0.85:
            KeyAttentionTag.objects.create(
                student=student, tag=AttentionTag.QUARANTINE, reason="隔离", since=yesterday, follow_up_every_days=1
            )
        if roll > 0.7:
            ContactLog.objects.create(student=student, contacted_at=local(8, 55), note="已联系")


def build_small(world) -> Campus1:
    campus = Campus.objects.create(university=world.university, code="Q", name="量测校区")
    CheckinSlot.objects.create(campus=campus, code="morning", opens_at="06:00", due_at="09:00", closes_at="10:00")
    CheckinSlot.objects.create(campus=campus, code="noon", opens_at="11:30", due_at="14:00", closes_at="14:30")
    college = College.objects.create(campus=campus, code="Q01", name="量测学院1")
    grade = Grade.objects.create(college=college, year=2024, name="2024级")
    klass = SchoolClass.objects.create(grade=grade, code="Q2024-01", name="量测2024-01班")
    c = Campus1(
        campus=campus,
        college=college,
        grade=grade,
        first_class=klass,
        first_student=None,  # type: ignore[arg-type]
        coordinator=_user("q_coord", Role.CAMPUS_COORDINATOR, campus=campus),
        counsellor=_user("q_counsellor", Role.COUNSELLOR, grade=grade),
        monitor=_user("q_monitor", Role.CLASS_MONITOR, school_class=klass),
    )
    students = _students(c, klass, 3)
    c.first_student = students[0]
    _activity(c, students, random.Random(1))
    rollup_compile_day(on=today() - dt.timedelta(days=1))
    return c


def grow(c: Campus1) -> None:
    """26 classes in all: 19 more in the counsellor's grade, 3 more colleges of 2
    classes; 30 students in every class."""
    rng = random.Random(2)
    students = _students(c, c.first_class, 27)
    for n in range(2, 21):
        klass = SchoolClass.objects.create(grade=c.grade, code=f"Q2024-{n:02d}", name=f"量测2024-{n:02d}班")
        students += _students(c, klass, 30)
    for m in range(2, 5):
        college = College.objects.create(campus=c.campus, code=f"Q0{m}", name=f"量测学院{m}")
        grade = Grade.objects.create(college=college, year=2024, name="2024级")
        for n in (1, 2):
            klass = SchoolClass.objects.create(grade=grade, code=f"Q{m}-{n}", name=f"量测{m}-{n}班")
            students += _students(c, klass, 30)
    _activity(c, students, rng)
    yesterday = today() - dt.timedelta(days=1)
    rollup_compile_day(on=yesterday)
    SignOff.objects.create(date=yesterday, level="grade", unit_id=c.grade.pk, state=SignOffState.CONFIRMED)


def pages(c: Campus1, world) -> dict[str, tuple[object, str]]:
    yesterday = (today() - dt.timedelta(days=1)).isoformat()
    student = f"/dashboard/students/{c.first_student.pk}/"
    return {
        "university admin: university today": (world.uni_admin, "/dashboard/"),
        "university admin: university yesterday": (world.uni_admin, f"/dashboard/?date={yesterday}"),
        "university admin: morning page": (world.uni_admin, "/dashboard/today/"),
        "coordinator: campus today": (c.coordinator, "/dashboard/"),
        "coordinator: campus yesterday": (c.coordinator, f"/dashboard/?date={yesterday}"),
        "coordinator: college today": (c.coordinator, f"/dashboard/?unit=college:{c.college.pk}"),
        "coordinator: class today": (c.coordinator, f"/dashboard/?unit=school_class:{c.first_class.pk}"),
        "coordinator: class yesterday": (
            c.coordinator,
            f"/dashboard/?unit=school_class:{c.first_class.pk}&date={yesterday}",
        ),
        "coordinator: student": (c.coordinator, student),
        "counsellor: grade today": (c.counsellor, "/dashboard/"),
        "counsellor: grade yesterday": (c.counsellor, f"/dashboard/?date={yesterday}"),
        "counsellor: morning page": (c.counsellor, "/dashboard/today/"),
        "counsellor: student": (c.counsellor, student),
        "monitor: class today": (c.monitor, "/dashboard/"),
        "monitor: morning page": (c.monitor, "/dashboard/today/"),
        "monitor: student": (c.monitor, student),
    }


def measure(client, user, url: str) -> int:
    client.force_login(user)
    assert client.get(url).status_code == 200  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries.captured_queries)


def _is_count(sql: str) -> bool:
    return sql.startswith('SELECT COUNT(*) AS "__count"')


def statements(client, user, url: str) -> tuple[int, int]:
    """(statements other than a list's count, counts) of one view of ``url``."""
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200, url
    counts = sum(_is_count(q["sql"]) for q in queries.captured_queries)
    return len(queries.captured_queries) - counts, counts


@pytest.fixture
def at_930(time_machine):
    time_machine.move_to(local(9, 30), tick=False)


def test_every_page_costs_the_same_queries_at_two_sizes(client, world, at_930, capsys):
    c = build_small(world)
    small = {}
    for name, (user, url) in pages(c, world).items():
        measure(client, user, url)  # warm caches (content types, sessions)
        small[name] = statements(client, user, url)

    grow(c)
    assert Student.objects.filter(campus=c.campus).count() == 30 * 26
    counted = 0
    for name, (user, url) in pages(c, world).items():
        others, counts = statements(client, user, url)
        # Exactly the same statements, and at most one more count per list whose first
        # page is now full (a list that fits its page is not counted:
        # reports.dashboard._page_total).
        assert others == small[name][0], (name, others, small[name])
        assert small[name][1] <= counts <= small[name][1] + LISTS_PER_PAGE, (name, counts, small[name])
        counted += counts - small[name][1]
    assert counted  # some list did fill its page at the larger size

    for name, (others, counts) in small.items():
        assert others + counts <= CEILING, f"{name}: {others + counts} queries"
    with capsys.disabled():
        print("\nqueries per page (1 class / 26 classes):", {name: sum(n) for name, n in small.items()})
