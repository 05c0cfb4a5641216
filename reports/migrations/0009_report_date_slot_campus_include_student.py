"""The day's reports by campus, with the student: ``(date, slot, campus) INCLUDE (student)``.

A missing list (未报名单) counts the unit's enrolled students who have no report for the
day and slot.  With no index holding a day's reports' students, PostgreSQL probed the
report table's unique index once per student: at 100,000 students and 90 days of
reports a campus's count (35,897 students, 1,704 missing) took 256–306 ms (EXPLAIN
ANALYZE, benchmark measurement 3c; the count is 85 % of the request).  With the
student included in the day's index it reads the day's 128,898 reports from the index
alone and anti-joins them to the campus's students by hash: 83–84 ms (a past day, its
pages all-visible; a day inserted since the last vacuum, as a live morning is, is checked
in the heap row by row: 129–169 ms against the probes' 170–187 ms).  The index
replaces ``report_date_slot_campus`` (the same keys), so a report submission maintains
no more indexes than before.

On PostgreSQL both are done ``CONCURRENTLY`` (the new index is built before the old one
is dropped): an upgrade does not stop the check-in for the time it takes to read a table
of millions.  SQLite has no ``INCLUDE``: there the index is the keys alone.
"""

from django.db import migrations, models

from reports.migration_operations import AddIndexConcurrentlyWherePossible, RemoveIndexConcurrentlyWherePossible


class Migration(migrations.Migration):
    atomic = False  # CREATE / DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("reports", "0008_ledger_job_running_label"),
    ]

    operations = [
        AddIndexConcurrentlyWherePossible(
            model_name="dailyreport",
            index=models.Index(
                fields=["date", "slot", "campus"], include=["student"], name="report_date_slot_campus_inc"
            ),
        ),
        RemoveIndexConcurrentlyWherePossible(model_name="dailyreport", name="report_date_slot_campus"),
    ]
