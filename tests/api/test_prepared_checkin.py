"""On PostgreSQL a check-in's statements are prepared on the web thread's connection
at their sixth run there (config/settings.py, DJANGO_DB_PREPARE_THRESHOLD): the
morning's submissions are parsed once per connection, not per request (each run is
still planned for its own values)."""

from __future__ import annotations

import pytest
from django.db import connection

from reports.models import DailyReport
from tests.api.test_idempotency import _many_students
from tests.reports.checkin import answer, client_for
from tests.test_db_backend import plans

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")


def test_the_check_in_statements_are_prepared_after_five_check_ins(world, slots, morning):
    students = _many_students(world, 6)
    client = client_for(None)
    for student in students:
        client.force_authenticate(student.user)
        assert client.post("/api/v1/reports/", answer(), format="json").status_code == 201
    assert DailyReport.objects.filter(student__in=students).count() == 6

    prepared = list(plans(connection))
    # The fast path's read (the slot and the student's days) and its insert with the
    # history row, with their parameters as $n: the same statement for every student.
    probe = [s for s in prepared if s.lstrip().startswith("WITH mine AS")]
    insert = [s for s in prepared if "INSERT INTO" in s and "reports_dailyreport" in s]
    assert len(probe) == 1 and "$1" in probe[0]
    assert len(insert) == 1 and "$1" in insert[0]
