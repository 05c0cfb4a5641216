"""The missing list (未报名单): who is expected and has not reported, with the
responsible counsellor and the last contact — in a fixed number of SQL queries
whatever the size of the unit."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campuses.models import SchoolClass
from reports.models import Excusal
from reports.selectors import missing_details, report_missing
from students.models import ContactLog, EnrolmentStatus, Gender, Student
from tests.reports.checkin import Details, client_for, counsellors_and_contacts, local, submit, today


def _missing(user, **kwargs):
    students, _detailed = report_missing(user=user, on=kwargs.pop("on", today()), slot_code="morning", **kwargs)
    return list(students)


def test_reported_excused_and_not_enrolled_students_are_not_missing(world, slots):
    a = world["A"]
    submit(a.students[0])
    Excusal.objects.create(student=a.students[1], reason="in_hospital", starts_on=today())
    Excusal.objects.create(
        student=a.students[2],
        reason="on_leave",
        starts_on=today() - dt.timedelta(days=5),
        ends_on=today() - dt.timedelta(days=1),  # over yesterday: expected again
    )
    Student.objects.filter(pk=a.students[3].pk).update(enrolment_status=EnrolmentStatus.GRADUATED)

    missing = _missing(a.counsellor)
    assert [s.pk for s in missing] == [a.students[2].pk, a.students[4].pk, a.students[5].pk]


def test_a_report_for_another_slot_or_day_does_not_count(world, slots):
    a = world["A"]
    submit(a.students[0], when=local(12, 0), slot="noon")
    submit(a.students[1], when=local(8, 0, day=today() - dt.timedelta(days=1)))
    assert {s.pk for s in _missing(a.counsellor)} == {s.pk for s in a.students}


def test_students_of_a_campus_without_that_slot_are_not_expected(world, slots):
    students, _ = report_missing(user=world.uni_admin, on=today(), slot_code="noon")
    assert {s.campus_id for s in students} == {world["A"].campus.pk}


def _details(student) -> Details:
    return Details(
        student.counsellor_name,
        student.last_contact_at,
        student.last_contact_channel,
        student.last_contact_outcome,
        student.last_contact_by,
    )


def test_missing_details_name_the_responsible_counsellor_and_the_last_contact(world, slots):
    expected = counsellors_and_contacts(world)
    qs, detailed = report_missing(user=world["A"].coordinator, on=today(), slot_code="morning")
    assert detailed
    with CaptureQueriesContext(connection) as captured:
        rows = missing_details(qs, on=today())
    assert {s.student_number: _details(s) for s in rows} == expected
    assert len(captured.captured_queries) == 2  # the list, then the details of all its rows


@pytest.mark.parametrize(("days", "class_counsellor"), [(-1, "赵老师"), (0, "李老师"), (1, "钱老师")])
def test_the_responsible_counsellor_is_the_one_on_duty_that_day(world, slots, days, class_counsellor):
    """Class 2's counsellors: 赵 until yesterday, 钱 from tomorrow, 李 always — the
    earliest assignment of those on duty that day; the grade's 王 comes after them."""
    a = world["A"]
    counsellors_and_contacts(world)
    on = today() + dt.timedelta(days=days)
    qs, _detailed = report_missing(user=a.coordinator, on=on, slot_code="morning")
    assert {s.school_class_id: s.counsellor_name for s in missing_details(qs, on=on)} == {
        a.classes[0].pk: "王老师",
        a.classes[1].pk: class_counsellor,
    }


def test_missing_rows_of_the_api_name_the_counsellor_and_the_last_contact(world, slots):
    expected = counsellors_and_contacts(world)
    a = world["A"]
    rows = {row["student_number"]: row for row in _api_rows(a.counsellor)}
    assert rows.keys() == expected.keys()
    for number, row in rows.items():
        want = expected[number]
        assert row["counsellor"] == want.counsellor
        contact = None
        if want.contacted_at is not None:
            contact = {"at": want.contacted_at.isoformat(), "channel": want.channel, "outcome": want.outcome}
            contact["by"] = want.by
        assert row["last_contact"] == contact, number
    assert rows[a.students[2].student_number]["phone"] == a.students[2].phone  # a counsellor calls: full number


def test_coordinator_sees_masked_phones(world, slots):
    rows = _api_rows(world["A"].coordinator)
    assert rows and all("****" in row["phone"] for row in rows)


def _api_rows(user, **params):
    response = client_for(user).get("/api/v1/reports/missing/", {"slot": "morning", **params})
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_class_monitor_sees_names_of_their_class_and_no_health_data(world, slots):
    a = world["A"]
    submit(a.students[0], temperature="38.5", symptoms=["cough"])
    Excusal.objects.create(student=a.students[1], reason="in_hospital", starts_on=today())
    monitor = client_for(a.monitor)

    rows = _api_rows(a.monitor)
    missing = a.students[2]
    assert rows == [
        {"student_number": missing.student_number, "name": missing.name, "school_class_name": a.classes[0].name}
    ]
    # And nothing about health anywhere else either.
    assert monitor.get("/api/v1/reports/").json()["count"] == 0
    assert monitor.get("/api/v1/excusals/").status_code == 403
    assert monitor.get("/api/v1/contacts/").status_code == 403


def _add_students(klass: SchoolClass, count: int, prefix: str) -> None:
    for n in range(count):
        Student.objects.create(
            student_number=f"{prefix}{n:05d}", name=f"新生{n}", gender=Gender.MALE, school_class=klass
        )


@pytest.mark.parametrize("extra", [0, 60])
def test_missing_list_costs_the_same_queries_for_a_class_and_a_campus(world, slots, extra):
    a = world["A"]
    _add_students(a.classes[0], extra, "X")
    ContactLog.objects.bulk_create(
        ContactLog(student=s, contacted_at=local(7, 0)) for s in Student.objects.filter(campus=a.campus)
    )
    # scope (assignments, own student record), the page and its rows' counsellors and
    # last contacts (one statement for the page): 4 — and the count when the first page
    # is full (config.pagination): 5, for any unit size.
    for params in ({"school_class": a.classes[1].pk}, {}, {"unit": f"campus:{a.campus.pk}"}):
        client = client_for(type(a.coordinator).objects.get(pk=a.coordinator.pk))  # as a new request
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/api/v1/reports/missing/", {"slot": "morning", **params})
        assert response.status_code == 200
        full = response.json()["count"] >= settings.REST_FRAMEWORK["PAGE_SIZE"]
        assert len(captured.captured_queries) == (5 if full else 4), params
    assert response.json()["count"] == 6 + extra


def test_missing_list_for_monitor_costs_the_same_queries(world, slots, django_assert_num_queries):
    _add_students(world["A"].classes[0], 30, "Y")
    with django_assert_num_queries(3):  # scope, own student record, the page (not full: no COUNT)
        rows = _api_rows(world["A"].monitor)
    assert len(rows) == 33


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's query plans")
@pytest.mark.parametrize(
    ("persona", "unit", "index"),
    [
        ("coordinator", "campus_id", "student_campus_list"),
        ("college_admin", "college_id", "student_college_list"),
        ("counsellor", "grade_id", "student_grade_list"),
    ],
)
def test_a_units_first_page_is_read_in_the_order_of_an_index(world, slots, persona, unit, index):
    """A campus's first page must stop after a page of rows, not sort the campus: with
    only the unit indexed, PostgreSQL walked the class index and filtered out every
    other unit's students (benchmark: 39,532 rows for a campus page).  Sorting and
    sequential scans are priced out so that the plan shows which index can give the
    list's order for the unit; none can if the index or the list's order changes (the
    subqueries' sorts of a student's contacts are not the list's)."""
    a = world["A"]
    students = Student.objects.filter(**{unit: getattr(a.students[0], unit)})
    qs, _detailed = report_missing(user=getattr(a, persona), on=today(), slot_code="morning", students=students)
    sql, params = qs[:50].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_incremental_sort = off")
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0][0]["Plan"]

    def nodes(node):
        yield node
        for child in node.get("Plans", ()):
            yield from nodes(child)

    scans = [n for n in nodes(plan) if n.get("Relation Name") == "students_student"]
    assert [n.get("Index Name") for n in scans] == [index], scans
    sorts = [n["Sort Key"] for n in nodes(plan) if n["Node Type"] in ("Sort", "Incremental Sort")]
    assert not [key for key in sorts if any("students_student." in k for k in key)], sorts
