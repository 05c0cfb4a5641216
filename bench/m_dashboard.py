"""Measurement 4: the dashboard pages (数据看板) of the university, a campus and a class.

- figure: p95 of ``GET /dashboard/?unit=…`` through Django's test client, rendered
  template included, as the university admin, the campus coordinator and the class's
  counsellor; for a past day (yesterday: the page reads the nightly snapshots, of which
  there is a year) and for today (live: today's figures are computed from the reports
  by :func:`reports.rollup.rollup_compute`, the rest of the page as for a past day);
- reference: the page's figures read from the raw reports directly — the unit's and
  its children's figures for the day (``rollup_compute`` narrowed to the unit) and the
  30-day trend in one ``GROUP BY date`` over the reports, plus the expected count.

A campus's and the university's live page keep their figures and lists for a minute
(:mod:`reports.live_lists`): the timed views after the first are what every later
viewer of that minute gets.  What the minute's first viewer waits for — the roll-up
and the lists computed — is measured apart as ``first_view`` (rows 4n, 4o).

The suite measures the pages as they are at 23:00 of the data's last complete day
(:func:`measure_full_day`): "today" is then a whole day of reports — every slot closed,
the missing list the few who never reported — and "yesterday" the day before, whatever
the hour the benchmark runs at (the data's real today holds only the reports up to the
moment it was built: none before 06:00 in Shanghai).
"""

from __future__ import annotations

import datetime as dt
import time

import time_machine
from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.core import summary, timings
from bench.data import duty_holder
from campuses.models import Campus, Role, SchoolClass, University
from reports.dashboard import CACHED_LEVELS, TREND_DAYS
from reports.live_lists import mark_fresh
from reports.models import CheckinSlot
from reports.rollup import rollup_compute
from reports.rollup_models import Level
from students.models import EnrolmentStatus, Student

_REPORT_COLUMN = {
    Level.CAMPUS: "campus_id",
    Level.COLLEGE: "college_id",
    Level.GRADE: "grade_id",
    Level.SCHOOL_CLASS: "school_class_id",
}


def cases() -> list[tuple[str, int, object, str]]:
    """(level, unit id, user, role) for the university, the first campus and a class."""
    university = University.objects.order_by("pk").first()
    campus = Campus.objects.order_by("code").first()
    klass = SchoolClass.objects.filter(grade__college__campus=campus).order_by("-grade__year", "code").first()

    return [
        (
            Level.UNIVERSITY,
            university.pk,
            duty_holder(Role.UNIVERSITY_ADMIN, university=university),
            "university_admin",
        ),
        (Level.CAMPUS, campus.pk, duty_holder(Role.CAMPUS_COORDINATOR, campus=campus), "campus_coordinator"),
        (Level.SCHOOL_CLASS, klass.pk, duty_holder(Role.COUNSELLOR, grade_id=klass.grade_id), "counsellor"),
    ]


def raw_read(*, level: str, unit_id: int, on: dt.date, slot_code: str) -> dict:
    """The page's figures straight from the reports (the reference)."""
    rollup = rollup_compute(on=on, slot_code=slot_code, level=level, unit_id=unit_id)
    unit = rollup.get(level, unit_id)
    children = rollup.children(level, unit_id)
    where, params = "", [slot_code, on - dt.timedelta(days=TREND_DAYS - 1), on]
    column = _REPORT_COLUMN.get(level)
    if column:
        where = f"AND r.{column} = %s"
        params.append(unit_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.date, COUNT(*), SUM(CASE WHEN r.abnormal THEN 1 ELSE 0 END) "
            "FROM reports_dailyreport r JOIN reports_checkinslot sl ON sl.id = r.slot_id "
            f"WHERE sl.code = %s AND r.date BETWEEN %s AND %s {where} GROUP BY r.date",
            params,
        )
        trend = cursor.fetchall()
    students = Student.objects.filter(enrolment_status=EnrolmentStatus.ENROLLED)
    if column:
        students = students.filter(**{column: unit_id})
    slots = CheckinSlot.objects.filter(code=slot_code, active=True).values("campus_id")
    expected = students.filter(campus_id__in=slots).count()
    return {"unit": unit.counts if unit else None, "children": len(children), "trend": trend, "expected": expected}


def measure(*, on: dt.date, today: dt.date, slot_code: str = "morning", repeats: int = 20) -> dict:
    out: dict = {
        "past_day": on.isoformat(),
        "today": today.isoformat(),
        "slot": slot_code,
        "measured_as_at": timezone.localtime().isoformat(),  # the clock the pages run by
        "pages": {},
    }
    for level, unit_id, user, role in cases():
        client = Client()
        client.force_login(user)
        for day_kind, day in (("past", on), ("live", today)):
            cached = day_kind == "live" and level in CACHED_LEVELS
            url = f"/dashboard/?unit={level}:{unit_id}&slot={slot_code}"
            if day_kind == "past":
                url += f"&date={day.isoformat()}"
            opening = first_view(client, url) if cached else None  # before the cache holds the page
            reset_queries()  # a request resets the log: start from empty
            with CaptureQueriesContext(connection) as captured:
                response = client.get(url)
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}")
            queries = len(captured.captured_queries)  # now: the next requests reset the log it reads
            page = timings(lambda client=client, url=url: client.get(url), repeats=repeats, warmup=0)
            if cached:
                opening["page"] = summary(
                    [opening.pop("seconds"), *(first_view(client, url)["seconds"] for _ in range(repeats // 2))]
                )
            started = time.perf_counter()
            raw_read(level=level, unit_id=unit_id, on=day, slot_code=slot_code)
            first = time.perf_counter() - started
            # The median of at least three reads (the first reads cold pages): a slow
            # reference must not flatter the ratio.
            again = timings(
                lambda level=level, unit_id=unit_id, day=day: raw_read(
                    level=level, unit_id=unit_id, on=day, slot_code=slot_code
                ),
                repeats=4 if first < 0.5 else 2,
                warmup=0,
            )
            raw = [first, *again]
            reset_queries()  # a request resets the log: start from empty
            with CaptureQueriesContext(connection) as raw_captured:
                raw_read(level=level, unit_id=unit_id, on=day, slot_code=slot_code)
            out["pages"][f"{level}/{day_kind}"] = {
                "unit_id": unit_id,
                "as": role,
                "page": summary(page),
                "queries": queries,
                "bytes": len(response.content),
                "raw_read": summary(raw),
                "raw_read_queries": len(raw_captured.captured_queries),
            }
            if cached:
                out["pages"][f"{level}/{day_kind}"]["first_view"] = opening
    return out


def first_view(client: Client, url: str) -> dict:
    """One view of a live campus or university page as its minute's first viewer sees
    it: the figures and the lists computed, not read from the cache (the mark a user's
    action leaves in their session, :func:`reports.live_lists.mark_fresh`, set before the
    clock starts).  Seconds and statements."""
    session = client.session
    mark_fresh(session)
    session.save()
    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        response = client.get(url)
        seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}")
    return {"seconds": seconds, "queries": len(captured.captured_queries)}


def full_day_moment(day: dt.date) -> dt.datetime:
    """23:00 of ``day`` in the project's time zone: every slot of the day has closed."""
    return dt.datetime.combine(day, dt.time(23, 0), tzinfo=timezone.get_default_timezone())


def measure_full_day(*, repeats: int = 20) -> dict:
    """:func:`measure` as at 23:00 of yesterday (the data's last complete day), with
    the day before it as the past day."""
    day = timezone.localdate() - dt.timedelta(days=1)
    with time_machine.travel(full_day_moment(day), tick=True):
        return measure(on=day - dt.timedelta(days=1), today=day, repeats=repeats)
