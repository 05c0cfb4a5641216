"""The open follow-ups by student: ``(student, date) WHERE follow_up = 'open'``.

A counsellor's morning page lists the open follow-ups of earlier days of the students
they chase.  The open follow-ups were indexed by class only, and the scope is the
students' own (current) units, so PostgreSQL read every open follow-up of the
university before the date: at 100,000 students and 90 days of reports with 82,626
open, the list and its count took 350 ms each (EXPLAIN ANALYZE; JIT compiling another
65-90 ms each), the page 880 ms.  With the students first, it probes the index once
per student of the scope.

The index is partial (open follow-ups only), so a report submission pays for it only
when it opens one.  On PostgreSQL it is built ``CONCURRENTLY``: an upgrade does not
stop the check-in for the time it takes to read a table of millions.
"""

from django.db import migrations, models

from reports.migration_operations import AddIndexConcurrentlyWherePossible


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("reports", "0005_report_date_statistics"),
    ]

    operations = [
        AddIndexConcurrentlyWherePossible(
            model_name="dailyreport",
            index=models.Index(
                condition=models.Q(("follow_up", "open")),
                fields=["student", "date"],
                name="report_follow_up_open_student",
            ),
        ),
    ]
