"""Measurement 3: the missing list (未报名单) through ``GET /api/v1/reports/missing/`` for
a class, a college and a campus, each as the staff member who works from it.

- figure: p95 of repeated requests through Django's test client in this process
  (the whole stack: middleware, session authentication, DRF, filters, the selector
  :func:`reports.selectors.report_missing`, pagination, serialisation);
- reference: the bare SQL behind it — the statements of one request that read the
  report table (the page, and its count where the request makes one), captured from
  that request and re-run through a plain cursor.

The day is yesterday (a complete day of the generated history, so the figures do not
depend on the hour the benchmark runs); the first page (50 rows) is what is timed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.core import summary, timings
from bench.data import duty_holder
from campuses.models import Campus, College, Role, SchoolClass
from reports.models import DailyReport


@dataclass
class Case:
    level: str
    unit_id: int
    param: str
    user: object
    role: str


def cases() -> list[Case]:
    """A class, its college and its campus (the first campus, the largest college on
    it, a class of its newest grade), each with the user who reads that list: the
    grade's counsellor, the college admin, the campus coordinator."""
    campus = Campus.objects.order_by("code").first()
    college = max(College.objects.filter(campus=campus).order_by("code"), key=_students)
    klass = SchoolClass.objects.filter(grade__college=college).order_by("-grade__year", "code").first()

    return [
        Case(
            "school_class",
            klass.pk,
            "school_class",
            duty_holder(Role.COUNSELLOR, grade_id=klass.grade_id),
            "counsellor",
        ),
        Case("college", college.pk, "college", duty_holder(Role.COLLEGE_ADMIN, college=college), "college_admin"),
        Case("campus", campus.pk, "campus", duty_holder(Role.CAMPUS_COORDINATOR, campus=campus), "campus_coordinator"),
    ]


def _students(college: College) -> int:
    from students.models import Student

    return Student.objects.filter(college=college).count()


def run_sql(statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)
            cursor.fetchall()


def measure(*, on: dt.date, slot_code: str = "morning", repeats: int = 30) -> dict:
    out: dict = {"date": on.isoformat(), "slot": slot_code, "levels": {}}
    table = DailyReport._meta.db_table
    for case in cases():
        client = Client()
        client.force_login(case.user)
        url = f"/api/v1/reports/missing/?slot={slot_code}&date={on.isoformat()}&{case.param}={case.unit_id}"
        reset_queries()  # a request resets the log: start from empty
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.content[:300]!r}")
        queries = len(captured.captured_queries)  # now: the next requests reset the log it reads
        body = response.json()
        statements = [q["sql"] for q in captured.captured_queries if table in q["sql"]]
        api = timings(lambda client=client, url=url: client.get(url), repeats=repeats, warmup=1)
        bare = timings(lambda statements=statements: run_sql(statements), repeats=repeats, warmup=1)
        out["levels"][case.level] = {
            "unit_id": case.unit_id,
            "as": case.role,
            "missing": body["count"],
            "page_rows": len(body["results"]),
            "api": summary(api),
            "queries": queries,
            "bare_sql": summary(bare),
            "bare_sql_statements": len(statements),
        }
    return out
