"""A missing list's count reads the day's reports from one index (reports/migrations/0009).

The count of a campus's or a college's missing students anti-joins its students to the
day's reports.  With no index holding a day's reports' students, PostgreSQL probed the
report table once per student (256–306 ms for a campus of 35,897 students at 100,000
students and 90 days of reports); with ``(date, slot, campus) INCLUDE (student)`` it
reads the day's reports from the index alone and anti-joins them by hash (83–84 ms)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from reports.models import DailyReport
from reports.selectors import report_missing
from tests.reports.checkin import submit, today

pytestmark = pytest.mark.django_db

INDEX = "report_date_slot_campus_inc"


def test_the_days_reports_are_indexed_by_slot_and_campus_on_every_database():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, DailyReport._meta.db_table)
    assert constraints[INDEX]["index"]
    assert constraints[INDEX]["columns"][:3] == ["date", "slot_id", "campus_id"]
    # PostgreSQL lists the included column after the keys; SQLite has no INCLUDE.
    included = ["student_id"] if connection.vendor == "postgresql" else []
    assert constraints[INDEX]["columns"][3:] == included
    assert "report_date_slot_campus" not in constraints  # replaced, not one more on the insert path


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's INCLUDE and plans")
def test_a_campus_count_reads_the_days_reports_from_the_index_alone(world, slots, transactional_db):
    """40 days of reports of every student; the coordinator's count of today's missing
    students of campus A.  Nested loops (one probe per student) are priced out, and
    so are sequential and bitmap scans (the tables are small: they could win here):
    the reports must then come from an index-only scan of the day's index — which
    cannot be without the student in it.  The table is vacuumed (outside a
    transaction: this test commits) so that its pages are all-visible, as a past day's
    are: otherwise an index-only scan costs what an index scan of the three other
    ``(date, slot, unit)`` indexes does, and the planner's pick among them is a tie."""
    a = world["A"]
    report = submit(a.students[0]).report
    columns = [f.column for f in DailyReport._meta.concrete_fields if f.column not in ("id", "date", "client_id")]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO reports_dailyreport (date, client_id, {', '.join(columns)}) "
            f"SELECT r.date - d, NULL, {', '.join(f'r.{c}' for c in columns)} "
            "FROM reports_dailyreport r CROSS JOIN generate_series(1, 40) d WHERE r.id = %s",
            [report.pk],
        )
        cursor.execute("VACUUM ANALYZE reports_dailyreport")
    assert DailyReport.objects.filter(student=a.students[0], date__lt=today() - dt.timedelta(days=39)).exists()
    students, _detailed = report_missing(user=a.coordinator, on=today(), slot_code="morning")
    with CaptureQueriesContext(connection) as captured:
        assert students.count() == len(a.students) - 1
    (count,) = captured.captured_queries  # the statement as it ran, its values bound
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in ("enable_nestloop", "enable_seqscan", "enable_bitmapscan"):
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute("EXPLAIN (FORMAT JSON) " + count["sql"])
        plan = cursor.fetchone()[0][0]["Plan"]

    def nodes(node):
        yield node
        for child in node.get("Plans", ()):
            yield from nodes(child)

    scans = [
        (n["Node Type"], n.get("Index Name"))
        for n in nodes(plan)
        if n.get("Relation Name") == DailyReport._meta.db_table
    ]
    assert scans == [("Index Only Scan", INDEX)], scans
