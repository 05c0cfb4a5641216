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
from tests.reports.checkin import submit, today

pytestmark = pytest.mark.django_db


def test_open_follow_ups_are_indexed_by_student_on_every_database():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, DailyReport._meta.db_table)
    index = constraints["report_follow_up_open_student"]
    assert index["index"] and index["columns"] == ["student_id", "date"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_the_morning_pages_earlier_follow_ups_are_read_by_student(world, slots):
    """Every student of the world with a year of reports, one in 30 an open follow-up;
    the counsellor of campus A's grade chases half of them.  Index paths only (the
    tables are tiny, a sequential scan would win here): the list reads the by-student
    index."""
    normal = submit(world["A"].students[0]).report
    fever = submit(world["A"].students[1], temperature="38.5").report
    assert normal.follow_up == FollowUp.NONE and fever.follow_up == FollowUp.OPEN
    columns = [
        f.column for f in DailyReport._meta.concrete_fields if f.column not in ("id", "date", "student_id", "client_id")
    ]
    with connection.cursor() as cursor:
        # A year of reports of everyone; one day in 30 opened a follow-up.
        cursor.execute(
            f"INSERT INTO reports_dailyreport (student_id, date, {', '.join(columns)}) "
            f"SELECT s.id, r.date - d, {', '.join(f'r.{c}' for c in columns)} "
            "FROM reports_dailyreport r CROSS JOIN students_student s CROSS JOIN generate_series(1, 365) d "
            "WHERE r.id = CASE WHEN d %% 30 = 0 THEN %s ELSE %s END",
            [fever.pk, normal.pk],
        )
        cursor.execute("ANALYZE reports_dailyreport")
    earlier = follow_up_list(user=world["A"].counsellor).filter(date__lt=today())
    assert earlier.count() == 12 * len(world["A"].students)
    sql, params = earlier.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "report_follow_up_open_student" in plan, plan
