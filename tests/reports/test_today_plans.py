"""PostgreSQL's statistics of the report table's dates (reports/migrations/0005).

The statistics never know today: the table is analysed when a tenth of it has changed.
With every stored date among the most common values, an unseen date was estimated at
one row, and the check-in's reads took the (date, slot, …) indexes — every report of
today's slot — to find one student's (a student's check-in page 25 ms instead of 0.03 ms
with 20,000 of today's reports in, benchmark data)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from reports.models import DailyReport
from students.models import Student
from tests.reports.checkin import submit, today

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's statistics and plans")

PAST_DAYS = 15  # more days than the date column's most common values (10)


def _copy_reports(cursor, *, source_id: int, days_back: range) -> None:
    """Copies of report ``source_id`` for every student, shifted back by each of
    ``days_back`` days (the report itself excepted)."""
    columns = [
        f.column for f in DailyReport._meta.concrete_fields if f.column not in ("id", "date", "student_id", "client_id")
    ]
    cursor.execute(
        f"INSERT INTO reports_dailyreport (student_id, date, {', '.join(columns)}) "
        f"SELECT s.id, r.date - d, {', '.join(f'r.{c}' for c in columns)} "
        "FROM reports_dailyreport r CROSS JOIN students_student s "
        "CROSS JOIN generate_series(%s::integer, %s::integer) d "
        "WHERE r.id = %s AND NOT (s.id = r.student_id AND d = 0)",
        [days_back.start, days_back.stop - 1, source_id],
    )


def _estimated_rows(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        return cursor.fetchone()[0][0]["Plan"]["Plan Rows"]


def test_an_unseen_day_is_estimated_at_an_ordinary_days_share(world, slots, morning):
    """Without the migration's target, every one of the 15 dates is a most common value
    and today — unseen — is estimated at 1 row (the planner then prefers the date
    indexes for one student's report); with it, at about a fifteenth of the table."""
    source = submit(world["A"].students[0]).report
    with connection.cursor() as cursor:
        _copy_reports(cursor, source_id=source.pk, days_back=range(1, PAST_DAYS + 1))
        cursor.execute("ANALYZE reports_dailyreport")
        # Today's reports of everyone, after the statistics were taken.
        _copy_reports(cursor, source_id=source.pk, days_back=range(0, 1))
    past = DailyReport.objects.exclude(date=today()).count()
    assert DailyReport.objects.filter(date=today()).count() == Student.objects.count()  # today is there
    sql = "SELECT id FROM reports_dailyreport WHERE date = %s"
    estimate = _estimated_rows(sql, [today()])
    assert past / PAST_DAYS / 3 <= estimate <= past / PAST_DAYS * 3, (estimate, past)
    seen = _estimated_rows(sql, [today() - dt.timedelta(days=3)])  # a day the statistics know
    assert past / PAST_DAYS / 3 <= seen <= past / PAST_DAYS * 3, (seen, past)


@pytest.mark.django_db
def test_the_report_table_is_analysed_every_few_thousand_changes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'reports_dailyreport'")
        options = set(cursor.fetchone()[0] or ())
        cursor.execute(
            "SELECT attstattarget FROM pg_attribute WHERE attrelid = 'reports_dailyreport'::regclass "
            "AND attname = 'date'"
        )
        target = cursor.fetchone()[0]
    assert {"autovacuum_analyze_scale_factor=0", "autovacuum_analyze_threshold=5000"} <= options
    assert target == 10
