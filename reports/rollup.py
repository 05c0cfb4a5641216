"""The nightly roll-up (每日汇总): one day's figures for every class, grade, college,
campus and the university, computed set-based.

Product rule (DESIGN.md, "Reminders and the nightly roll-up"): expected, reported,
missing, excused, late, proxy, abnormal, fever, in quarantine, on campus / home /
elsewhere, and the number of students per key-attention group; stored as snapshots
per unit and day; rerunning gives identical snapshots; a run killed half-way and
rerun converges; the live "today so far" figures come from this same code.

How: two GROUP BY statements over the students of the university (figures per class,
key-attention tags per class), one read of the tree, then the classes are summed up
the tree in Python (a few thousand rows) and the whole day is replaced in one
transaction — so a killed run leaves the previous state and a rerun redoes it.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from campuses.bulk import insert_rows
from campuses.models import SchoolClass
from reports.models import FEVER_AT, CheckinSlot, DailyReport, Excusal
from reports.rollup_models import FIGURES, LEVEL_BELOW, Level, RollupRun, RollupSnapshot
from students.models import EnrolmentStatus, KeyAttentionTag, Student

_CLASS_FIGURES_SQL = """
SELECT s.school_class_id,
       SUM(CASE WHEN ex.student_id IS NULL THEN 1 ELSE 0 END),
       SUM(CASE WHEN ex.student_id IS NULL AND r.id IS NOT NULL THEN 1 ELSE 0 END),
       SUM(CASE WHEN ex.student_id IS NULL AND r.id IS NULL THEN 1 ELSE 0 END),
       SUM(CASE WHEN ex.student_id IS NOT NULL THEN 1 ELSE 0 END),
       SUM(CASE WHEN ex.student_id IS NULL AND r.late THEN 1 ELSE 0 END),
       SUM(CASE WHEN ex.student_id IS NULL AND r.source = 'proxy' THEN 1 ELSE 0 END),
       SUM(CASE WHEN ex.student_id IS NULL AND r.abnormal THEN 1 ELSE 0 END),
       SUM(CASE WHEN ex.student_id IS NULL AND r.temperature >= %(fever)s THEN 1 ELSE 0 END),
       SUM(CASE WHEN r.health_status = 'quarantine' THEN 1 ELSE 0 END),
       SUM(CASE WHEN COALESCE(r.whereabouts, s.whereabouts) = 'on_campus' THEN 1 ELSE 0 END),
       SUM(CASE WHEN COALESCE(r.whereabouts, s.whereabouts) = 'home' THEN 1 ELSE 0 END),
       SUM(CASE WHEN COALESCE(r.whereabouts, s.whereabouts) NOT IN ('on_campus', 'home') THEN 1 ELSE 0 END)
FROM {student} s
JOIN {slot} sl ON sl.campus_id = s.campus_id AND sl.code = %(slot)s AND sl.active
LEFT JOIN {report} r ON r.student_id = s.id AND r.date = %(date)s AND r.slot_id = sl.id
LEFT JOIN (
    SELECT DISTINCT student_id FROM {excusal}
    WHERE starts_on <= %(date)s AND (ends_on IS NULL OR ends_on >= %(date)s)
) ex ON ex.student_id = s.id
WHERE s.enrolment_status = %(enrolled)s {unit_filter}
GROUP BY s.school_class_id
"""

_CLASS_TAGS_SQL = """
SELECT s.school_class_id, t.tag, COUNT(DISTINCT s.id)
FROM {tag} t
JOIN {student} s ON s.id = t.student_id
JOIN {slot} sl ON sl.campus_id = s.campus_id AND sl.code = %(slot)s AND sl.active
WHERE t.since <= %(date)s AND (t.until IS NULL OR t.until >= %(date)s)
  AND s.enrolment_status = %(enrolled)s {unit_filter}
GROUP BY s.school_class_id, t.tag
"""

#: The student column that narrows a live roll-up to one unit's subtree.
_UNIT_COLUMNS = {
    Level.SCHOOL_CLASS: "school_class_id",
    Level.GRADE: "grade_id",
    Level.COLLEGE: "college_id",
    Level.CAMPUS: "campus_id",
}


def _sql(template: str, unit_filter: str) -> str:
    return template.format(
        student=Student._meta.db_table,
        slot=CheckinSlot._meta.db_table,
        report=DailyReport._meta.db_table,
        excusal=Excusal._meta.db_table,
        tag=KeyAttentionTag._meta.db_table,
        unit_filter=unit_filter,
    )


@dataclass
class UnitFigures:
    """The figures of one unit, before they are stored."""

    level: str
    unit_id: int
    name: str
    parent_id: int | None = None
    campus_id: int | None = None
    college_id: int | None = None
    grade_id: int | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))
    tags: dict[str, int] = field(default_factory=dict)

    def add(self, other: UnitFigures) -> None:
        for name in FIGURES:
            self.counts[name] += other.counts[name]
        for tag, n in other.tags.items():
            self.tags[tag] = self.tags.get(tag, 0) + n

    @property
    def completion(self) -> float | None:
        expected = self.counts["expected"]
        return round(100 * self.counts["reported"] / expected, 1) if expected else None


@dataclass
class Rollup:
    """All units' figures for one date and slot, keyed by (level, unit_id)."""

    date: dt.date
    slot_code: str
    units: dict[tuple[str, int], UnitFigures]

    def get(self, level: str, unit_id: int) -> UnitFigures | None:
        return self.units.get((level, unit_id))

    def children(self, level: str, unit_id: int) -> list[UnitFigures]:
        below = LEVEL_BELOW.get(level)
        return sorted(
            (u for u in self.units.values() if u.level == below and u.parent_id == unit_id),
            key=lambda u: u.name,
        )


def rollup_compute(*, on: dt.date, slot_code: str, level: str | None = None, unit_id: int | None = None) -> Rollup:
    """Compute the figures of ``on``/``slot_code`` for every unit, or — for the live
    "today so far" of a dashboard — only for the subtree of (``level``, ``unit_id``)
    and the units above it on the way to the university.  Reads only; four queries."""
    params = {"date": on, "slot": slot_code, "enrolled": EnrolmentStatus.ENROLLED, "fever": FEVER_AT}
    unit_filter = ""
    if level is not None and level != Level.UNIVERSITY:
        unit_filter = f"AND s.{_UNIT_COLUMNS[level]} = %(unit)s"
        params["unit"] = unit_id
    per_class: dict[int, UnitFigures] = {}
    with connection.cursor() as cursor:
        cursor.execute(_sql(_CLASS_FIGURES_SQL, unit_filter), params)
        for class_id, *values in cursor.fetchall():
            figures = UnitFigures(level=Level.SCHOOL_CLASS, unit_id=class_id, name="")
            figures.counts = {name: int(v or 0) for name, v in zip(FIGURES, values, strict=True)}
            per_class[class_id] = figures
        cursor.execute(_sql(_CLASS_TAGS_SQL, unit_filter), params)
        for class_id, tag, n in cursor.fetchall():
            if class_id in per_class:
                per_class[class_id].tags[tag] = int(n)
    tree = SchoolClass.objects.filter(pk__in=list(per_class)).values_list(
        "id",
        "name",
        "grade_id",
        "grade__name",
        "grade__college_id",
        "grade__college__name",
        "grade__college__campus_id",
        "grade__college__campus__name",
        "grade__college__campus__university_id",
        "grade__college__campus__university__name",
    )
    units: dict[tuple[str, int], UnitFigures] = {}

    def unit(level: str, unit_id: int, name: str, parent_id: int | None, **copies) -> UnitFigures:
        key = (level, unit_id)
        if key not in units:
            units[key] = UnitFigures(level=level, unit_id=unit_id, name=name, parent_id=parent_id, **copies)
        return units[key]

    for cid, cname, gid, gname, coid, coname, caid, caname, uid, uname in tree.iterator():
        klass = per_class[cid]
        klass.name, klass.parent_id = cname, gid
        klass.campus_id, klass.college_id, klass.grade_id = caid, coid, gid
        units[(Level.SCHOOL_CLASS, cid)] = klass
        for above in (
            unit(Level.GRADE, gid, gname, coid, campus_id=caid, college_id=coid, grade_id=gid),
            unit(Level.COLLEGE, coid, coname, caid, campus_id=caid, college_id=coid),
            unit(Level.CAMPUS, caid, caname, uid, campus_id=caid),
            unit(Level.UNIVERSITY, uid, uname, None),
        ):
            above.add(klass)
    return Rollup(date=on, slot_code=slot_code, units=units)


_SNAPSHOT_FIELDS = [f for f in RollupSnapshot._meta.concrete_fields if not f.primary_key]


def _snapshot_value(unit: UnitFigures, name: str, common: dict):
    """The value of snapshot column ``name`` for ``unit``."""
    if name in common:
        return common[name]
    if name in unit.counts:
        return unit.counts[name]
    if name == "unit_name":
        return unit.name[:100]
    if name == "tags":
        return dict(sorted(unit.tags.items()))
    return getattr(unit, name)


@transaction.atomic
def rollup_compile(*, on: dt.date, slot_code: str) -> RollupRun:
    """Compile and store the snapshots of ``on``/``slot_code`` for the whole university.

    Idempotent: the day's snapshots are replaced whole inside one transaction, so a
    rerun gives identical rows and a run killed half-way leaves the previous state,
    which the next run replaces.  The :class:`RollupRun` row records when, how long and
    how many units."""
    started = time.monotonic()
    now = timezone.now()
    run, _ = RollupRun.objects.select_for_update().get_or_create(
        date=on, slot_code=slot_code, defaults={"started_at": now}
    )
    run.started_at, run.finished_at = now, None
    rollup = rollup_compute(on=on, slot_code=slot_code)
    RollupSnapshot.objects.filter(date=on, slot_code=slot_code).delete()
    fields = [f.attname for f in _SNAPSHOT_FIELDS]
    common = {"date": on, "slot_code": slot_code, "computed_at": now}
    insert_rows(
        RollupSnapshot,
        _SNAPSHOT_FIELDS,
        ([_snapshot_value(u, name, common) for name in fields] for u in rollup.units.values()),
    )
    run.finished_at = timezone.now()
    run.units = len(rollup.units)
    run.seconds = round(time.monotonic() - started, 3)
    run.save()
    return run


def rollup_slot_codes(on: dt.date) -> list[str]:
    """The slot codes some campus runs (the roll-up is compiled once per code)."""
    return sorted(set(CheckinSlot.objects.filter(active=True).values_list("code", flat=True)))


def rollup_compile_day(*, on: dt.date) -> list[RollupRun]:
    """Compile every slot code of ``on`` (what the nightly beat task runs)."""
    return [rollup_compile(on=on, slot_code=code) for code in rollup_slot_codes(on)]
