"""Measurement 2: the nightly roll-up of one day for every student.

- figure: :func:`reports.rollup.rollup_compile` for one past day and the morning slot
  (every campus has it): compute every class, grade, college, campus and the
  university, and replace the day's snapshots;
- reference: one hand-written SQL statement computing the same class-level figures
  (checked equal to the roll-up's classes), run as a person runs it on the stock
  server — and, for a like-with-like row, under the session settings the roll-up gives
  its own statement (no JIT compilation);
- naive: the per-unit ORM loop a typical developer writes — for each class a dozen
  ``.count()`` queries, the students' whereabouts in Python and an
  ``update_or_create`` of its snapshot — timed on a sample of classes and
  extrapolated to all classes (the grades, colleges and campuses it would also
  compute are left out, which flatters the naive loop).
"""

from __future__ import annotations

import datetime as dt
import time

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from bench.core import QueryCounter, count_queries, summary, timings
from campuses.models import SchoolClass
from reports.models import FEVER_AT, CheckinSlot, DailyReport, Excusal, ReportSource
from reports.rollup import ROLLUP_SESSION_SETTINGS, rollup_compile, rollup_compute
from reports.rollup_models import FIGURES, Level, RollupSnapshot
from students.models import EnrolmentStatus, KeyAttentionTag, Student, Whereabouts

HAND_SQL = """
SELECT s.school_class_id,
       COUNT(*) FILTER (WHERE ex.student_id IS NULL),
       COUNT(r.id) FILTER (WHERE ex.student_id IS NULL),
       COUNT(*) FILTER (WHERE ex.student_id IS NULL AND r.id IS NULL),
       COUNT(ex.student_id),
       COUNT(*) FILTER (WHERE ex.student_id IS NULL AND r.late),
       COUNT(*) FILTER (WHERE ex.student_id IS NULL AND r.source = 'proxy'),
       COUNT(*) FILTER (WHERE ex.student_id IS NULL AND r.abnormal),
       COUNT(*) FILTER (WHERE ex.student_id IS NULL AND r.temperature >= %(fever)s),
       COUNT(*) FILTER (WHERE r.health_status = 'quarantine'),
       COUNT(*) FILTER (WHERE COALESCE(r.whereabouts, s.whereabouts) = 'on_campus'),
       COUNT(*) FILTER (WHERE COALESCE(r.whereabouts, s.whereabouts) = 'home'),
       COUNT(*) FILTER (WHERE COALESCE(r.whereabouts, s.whereabouts) NOT IN ('on_campus', 'home'))
FROM students_student s
JOIN reports_checkinslot sl ON sl.campus_id = s.campus_id AND sl.code = %(slot)s AND sl.active
LEFT JOIN reports_dailyreport r ON r.student_id = s.id AND r.date = %(date)s AND r.slot_id = sl.id
LEFT JOIN (SELECT DISTINCT student_id FROM reports_excusal
           WHERE starts_on <= %(date)s AND (ends_on IS NULL OR ends_on >= %(date)s)) ex ON ex.student_id = s.id
WHERE s.enrolment_status = 'enrolled'
GROUP BY s.school_class_id
"""


def hand_sql(*, on: dt.date, slot_code: str, jit: bool = True) -> dict[int, dict[str, int]]:
    """The class-level figures of (``on``, ``slot_code``) in one statement, as a person
    runs it on the stock server; ``jit=False``: under the session settings the product
    gives its own statement (no JIT), for the like-with-like row."""
    with transaction.atomic(), connection.cursor() as cursor:
        if not jit and connection.vendor == "postgresql":
            cursor.execute(ROLLUP_SESSION_SETTINGS)
        cursor.execute(HAND_SQL, {"date": on, "slot": slot_code, "fever": FEVER_AT})
        return {row[0]: dict(zip(FIGURES, (int(v or 0) for v in row[1:]), strict=True)) for row in cursor.fetchall()}


def naive_rollup(*, class_ids: list[int], on: dt.date, slot_code: str) -> None:
    """What a developer writes first: per class, a query per figure, then save."""
    for klass in SchoolClass.objects.filter(pk__in=class_ids).select_related("grade__college"):
        slot = CheckinSlot.objects.filter(campus_id=klass.grade.college.campus_id, code=slot_code, active=True).first()
        if slot is None:
            continue
        students = Student.objects.filter(school_class=klass, enrolment_status=EnrolmentStatus.ENROLLED)
        excused = set(
            Excusal.objects.filter(student__in=students, starts_on__lte=on)
            .filter(Q(ends_on__isnull=True) | Q(ends_on__gte=on))
            .values_list("student_id", flat=True)
        )
        expected = students.exclude(pk__in=excused)
        reports = DailyReport.objects.filter(student__in=expected, date=on, slot=slot)
        figures = {
            "expected": expected.count(),
            "reported": reports.count(),
            "excused": len(excused),
            "late": reports.filter(late=True).count(),
            "proxy": reports.filter(source=ReportSource.PROXY).count(),
            "abnormal": reports.filter(abnormal=True).count(),
            "fever": reports.filter(temperature__gte=FEVER_AT).count(),
            "quarantine": DailyReport.objects.filter(
                student__in=students, date=on, slot=slot, health_status="quarantine"
            ).count(),
        }
        figures["missing"] = figures["expected"] - figures["reported"]
        said = dict(
            DailyReport.objects.filter(student__in=students, date=on, slot=slot).values_list(
                "student_id", "whereabouts"
            )
        )
        places = {"on_campus": 0, "home": 0, "elsewhere": 0}
        for student in students:
            where = said.get(student.pk, student.whereabouts)
            key = where if where in (Whereabouts.ON_CAMPUS, Whereabouts.HOME) else "elsewhere"
            places[key] += 1
        figures.update(places)
        tags: dict[str, set[int]] = {}
        for tag in KeyAttentionTag.objects.filter(student__in=students, since__lte=on).filter(
            Q(until__isnull=True) | Q(until__gte=on)
        ):
            tags.setdefault(tag.tag, set()).add(tag.student_id)
        RollupSnapshot.objects.update_or_create(
            date=on,
            slot_code=slot_code,
            level=Level.SCHOOL_CLASS,
            unit_id=klass.pk,
            defaults={
                **figures,
                "parent_id": klass.grade_id,
                "unit_name": klass.name,
                "tags": {k: len(v) for k, v in tags.items()},
                "computed_at": timezone.now(),
            },
        )


def measure(*, on: dt.date, slot_code: str = "morning", repeats: int = 5, naive_sample: int = 60) -> dict:
    """Time the roll-up, the hand-written statement and the naive loop (see module)."""
    run, queries = count_queries(lambda: rollup_compile(on=on, slot_code=slot_code))
    product = timings(lambda: rollup_compile(on=on, slot_code=slot_code), repeats=repeats, warmup=0)

    sql_rows, sql_queries = count_queries(lambda: hand_sql(on=on, slot_code=slot_code))
    computed = rollup_compute(on=on, slot_code=slot_code)
    classes = {u.unit_id: u.counts for u in computed.units.values() if u.level == Level.SCHOOL_CLASS}
    mismatched = sorted(k for k in set(classes) | set(sql_rows) if classes.get(k) != sql_rows.get(k))
    reference = timings(lambda: hand_sql(on=on, slot_code=slot_code), repeats=repeats, warmup=0)
    like_with_like = timings(lambda: hand_sql(on=on, slot_code=slot_code, jit=False), repeats=repeats, warmup=0)

    all_classes = list(SchoolClass.objects.order_by("pk").values_list("pk", flat=True))
    step = max(1, len(all_classes) // naive_sample)
    sample = all_classes[::step][:naive_sample]
    with transaction.atomic(), QueryCounter() as naive_counter:
        started = time.perf_counter()
        naive_rollup(class_ids=sample, on=on, slot_code=slot_code)
        naive_seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    naive_total = naive_seconds / len(sample) * len(all_classes) if sample else None
    return {
        "date": on.isoformat(),
        "slot": slot_code,
        "units": run.units,
        "classes": len(all_classes),
        "rollup": summary(product),
        "rollup_queries": queries,
        "hand_sql": summary(reference),
        "hand_sql_product_settings": summary(like_with_like),
        "hand_sql_queries": sql_queries,
        "hand_sql_matches_rollup": not mismatched,
        "hand_sql_mismatched_classes": mismatched[:10],
        "naive": {
            "sample_classes": len(sample),
            "sample_seconds": round(naive_seconds, 3),
            "queries_per_class": round(naive_counter.count / len(sample), 1) if sample else None,
            "extrapolated_seconds": round(naive_total, 2) if naive_total is not None else None,
            "extrapolated": len(sample) < len(all_classes),
        },
    }
