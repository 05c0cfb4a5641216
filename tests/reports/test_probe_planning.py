"""The check-in's read of a student's recent days plans without reading an index
(PostgreSQL).  With the days as a range ending today the planner looks up the date's
actual end in an index at every plan — today's rows are newer than the statistics —
and walks past every dead entry there: at 100,000 students, after a day's rows had been
written and removed (as edits and deletions leave them until a vacuum), 4,300 buffers
and 1.9 ms a plan, more than the rest of the server's time per check-in
(reports.services._lazy_bot_sql).  Each day by equality needs no such look-up."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection

from reports import services
from tests.reports.checkin import local, submit, today

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")

_PLANNING_BUFFERS = re.compile(r"^Planning:\n\s+Buffers: (.*)$", re.MULTILINE)


def _planning_buffers(sql: str, params: dict) -> int:
    """The buffers planning ``sql`` read (hit or read), the second time it is planned
    (the first reads the catalogues)."""
    with connection.cursor() as cursor:
        for _ in range(2):
            cursor.execute(f"EXPLAIN (SUMMARY, BUFFERS) {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
    found = _PLANNING_BUFFERS.search(plan)
    return sum(int(n) for n in re.findall(r"(?:hit|read)=(\d+)", found.group(1))) if found else 0


def test_the_probe_plans_without_reading_the_date_index(world, slots):
    student, classmate = world["A"].student, world["A"].classmate
    # A history the statistics know (a histogram of dates), then a report newer than them.
    for back in range(120, 0, -1):
        submit(classmate, when=local(8, 0, day=today() - dt.timedelta(days=back)), note=str(back))
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {services._REPORT}")
    submit(classmate)
    params = {
        **services._lazy_bot_params(day=today(), client_id=None, digest="0" * 32, second=8 * 3600),
        "student": student.pk,
        "campus": student.campus_id,
        "code": "morning",
    }
    ranged = services._probe_sql().replace("r.date = ANY(%(dates)s)", "r.date >= %(since)s AND r.date <= %(date)s")
    assert ranged != services._probe_sql()

    by_range = _planning_buffers(ranged, {**params, "since": today() - dt.timedelta(days=7)})
    by_list = _planning_buffers(services._probe_sql(), params)
    # Here the range's look-up reads a few pages of an index of a few rows (at 100,000
    # students, with the dead entries of the day's edits at the index's end, 4,300).
    assert by_list < by_range, (by_list, by_range)
    # The one statement of a first report reads its days the same way.
    assert "r.date = ANY(%(dates)s)" in services._direct_statement().sql
