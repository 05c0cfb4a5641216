"""Mobile retries never make a second report: 1,000 retried submissions give exactly
one report each, and two identical submissions racing on PostgreSQL give one report
and two successful answers (never a 500)."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections

from reports import services
from reports.models import DailyReport
from students.models import Gender, Student
from tests.reports.checkin import answer, client_for, local, make_slots
from tests.world import build_world


def _many_students(world, count: int) -> list[Student]:
    """``count`` students with logins in campus A's first class, inserted in bulk."""
    klass = world["A"].classes[0]
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"bulk{n:05d}", password="!") for n in range(count)
    )
    students = Student.objects.bulk_create(
        Student(
            student_number=f"B{n:07d}",
            name=f"学生{n}",
            gender=Gender.FEMALE,
            school_class=klass,
            grade_id=klass.grade_id,
            college_id=world["A"].college.pk,
            campus_id=world["A"].campus.pk,
            user=user,
        )
        for n, user in enumerate(users)
    )
    for student, user in zip(students, users, strict=True):
        student.user = user
    return students


def test_a_thousand_retried_submissions_yield_one_report_each(world, slots, morning):
    students = _many_students(world, 1000)
    client = client_for(None)
    statuses: dict[tuple[int, int], int] = {}
    for n, student in enumerate(students):
        client.force_authenticate(student.user)
        # Half the app's retries repeat the client id, half only repeat the answer.
        payload = answer(temperature=f"36.{n % 10}", client_id=str(uuid.uuid4()) if n % 2 else None)
        for attempt in (1, 2):
            statuses[(student.pk, attempt)] = client.post("/api/v1/reports/", payload, format="json").status_code

    assert {k: v for k, v in statuses.items() if k[1] == 1 and v != 201} == {}
    assert {k: v for k, v in statuses.items() if k[1] == 2 and v != 200} == {}
    assert DailyReport.objects.filter(student__in=students).count() == 1000
    assert DailyReport.objects.filter(student__in=students).values("student").distinct().count() == 1000


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: SQLite serialises writers (transaction_mode=IMMEDIATE), so two submissions "
    "cannot race; run with DATABASE_URL=postgres://...",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_submissions_make_one_report(monkeypatch, time_machine):
    time_machine.move_to(local(8, 0), tick=False)
    world = build_world()
    make_slots(world)
    user = world["A"].student_user
    payload = answer(client_id=str(uuid.uuid4()))

    # Both requests look for an existing report, find none, and only then insert: the
    # barrier makes the race happen every time instead of now and then.  The loser's
    # INSERT … ON CONFLICT writes nothing and it decides on the locking path.
    barrier = threading.Barrier(2, timeout=10)
    original = services._probe
    waited = threading.local()

    def racing_probe(**kwargs):
        probe = original(**kwargs)
        if not getattr(waited, "done", False):
            waited.done = True
            barrier.wait()
        return probe

    monkeypatch.setattr(services, "_probe", racing_probe)
    results: list[int] = []
    errors: list[BaseException] = []

    def post():
        try:
            response = client_for(user).post("/api/v1/reports/", payload, format="json")
            results.append(response.status_code)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(results) == [200, 201]
    assert DailyReport.objects.filter(student=world["A"].student).count() == 1
