"""The open follow-ups by student (reports/migrations/0006): a counsellor's morning page
lists the earlier open follow-ups of the students they chase.  With the open rows
indexed by class only, PostgreSQL read every open follow-up of the university to find
them (350 ms for the list and as much for its count at 100,000 students and 82,626
open follow-ups: the page 880 ms); by student it probes the index once per student of
the scope (the page 218 ms)."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from reports.models import DailyReport, FollowUp
from reports.selectors import follow_up_list
from students.models import Student
from tests.reports.checkin import submit, today

pytestmark = pytest.mark.django_db


def test_open_follow_ups_are_indexed_by_student_on_every_database():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, DailyReport._meta.db_table)
    index = constraints["report_follow_up_open_student"]
    assert index["index"] and index["columns"] == ["student_id", "date"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_the_morning_pages_earlier_follow_ups_are_read_by_student(world, slots):
    """1,000 students more, each with 40 days of reports, one in 10 an open follow-up;
    the counsellor of campus A's grade chases six of them.  Index paths only (the
    tables are small, a sequential scan could win here): the list probes the
    by-student index for the counsellor's students instead of reading every open
    follow-up of the university."""
    normal = submit(world["A"].students[0]).report
    fever = submit(world["A"].students[1], temperature="38.5").report
    assert normal.follow_up == FollowUp.NONE and fever.follow_up == FollowUp.OPEN
    student_columns = [
        f.column
        for f in Student._meta.concrete_fields
        if f.column not in ("id", "student_number", "user_id", "bed", "room_id", "building_id")
    ]
    columns = [
        f.column for f in DailyReport._meta.concrete_fields if f.column not in ("id", "date", "student_id", "client_id")
    ]
    with connection.cursor() as cursor:
        # 1,000 more students on the other campus: the counsellor's are a few of many.
        cursor.execute(
            f"INSERT INTO students_student (student_number, bed, {', '.join(student_columns)}) "
            f"SELECT 'X' || n, '', {', '.join(f's.{c}' for c in student_columns)} "
            "FROM students_student s CROSS JOIN generate_series(1, 1000) n WHERE s.id = %s",
            [world["B"].students[0].pk],
        )
        # 40 days of reports of everyone; one day in 10 opened a follow-up.
        cursor.execute(
            f"INSERT INTO reports_dailyreport (student_id, date, {', '.join(columns)}) "
            f"SELECT s.id, r.date - d, {', '.join(f'r.{c}' for c in columns)} "
            "FROM reports_dailyreport r CROSS JOIN students_student s CROSS JOIN generate_series(1, 40) d "
            "WHERE r.id = CASE WHEN d %% 10 = 0 THEN %s ELSE %s END",
            [fever.pk, normal.pk],
        )
        cursor.execute("ANALYZE students_student")
        cursor.execute("ANALYZE reports_dailyreport")
    earlier = follow_up_list(user=world["A"].counsellor).filter(date__lt=today())
    assert earlier.count() == 4 * len(world["A"].students)
    assert DailyReport.objects.filter(follow_up=FollowUp.OPEN).count() > 4 * 1000
    sql, params = earlier.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "report_follow_up_open_student" in plan, plan
