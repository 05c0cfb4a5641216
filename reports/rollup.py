"""The nightly roll-up (每日汇总): one day's figures for every class, grade, college,
campus and the university, computed set-based.

Product rule (DESIGN.md, "Reminders and the nightly roll-up"): expected, reported,
missing, excused, late, proxy, abnormal, fever, in quarantine, on campus / home /
elsewhere, and the number of students per key-attention group; stored as snapshots
per unit and day; rerunning gives identical snapshots; a run killed half-way and
rerun converges; the live "today so far" figures come from this same code.

How: one statement over the students of the university gives every class's figures,
its key-attention counts (a pivot of the few tag kinds) and its place in the tree.
Every level above is summed from the classes by one SQL definition (``_LEVELS_SQL``),
read back for a dashboard's live figures and written as the day's snapshots by the
nightly compile (its classes kept in a temporary table), the whole day replaced in one
transaction — so a killed run leaves the previous state and a rerun redoes it.  On
PostgreSQL these statements run without JIT compilation (which cost more than half of
the run time at 100,000 students).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from campuses.models import Campus, College, Grade, SchoolClass, University
from reports.models import FEVER_AT, CheckinSlot, DailyReport, Excusal
from reports.rollup_models import FIGURES, LEVEL_BELOW, Level, RollupRun, RollupSnapshot
from students.models import AttentionTag, EnrolmentStatus, KeyAttentionTag, Student

#: The slot code's column type, as the model declares it (a constant's type in SQL).
_SLOT_CODE_LENGTH = CheckinSlot._meta.get_field("code").max_length

#: The key-attention tag kinds, in the order of the pivot's columns.
TAG_KINDS: tuple[str, ...] = tuple(AttentionTag.values)

_FIGURE_SUMS = """
           SUM(CASE WHEN ex.student_id IS NULL THEN 1 ELSE 0 END) AS f0,
           SUM(CASE WHEN ex.student_id IS NULL AND r.id IS NOT NULL THEN 1 ELSE 0 END) AS f1,
           SUM(CASE WHEN ex.student_id IS NULL AND r.id IS NULL THEN 1 ELSE 0 END) AS f2,
           SUM(CASE WHEN ex.student_id IS NOT NULL THEN 1 ELSE 0 END) AS f3,
           SUM(CASE WHEN ex.student_id IS NULL AND r.late THEN 1 ELSE 0 END) AS f4,
           SUM(CASE WHEN ex.student_id IS NULL AND r.source = 'proxy' THEN 1 ELSE 0 END) AS f5,
           SUM(CASE WHEN ex.student_id IS NULL AND r.abnormal THEN 1 ELSE 0 END) AS f6,
           SUM(CASE WHEN ex.student_id IS NULL AND r.temperature >= %(fever)s THEN 1 ELSE 0 END) AS f7,
           SUM(CASE WHEN r.health_status = 'quarantine' THEN 1 ELSE 0 END) AS f8,
           SUM(CASE WHEN COALESCE(r.whereabouts, s.whereabouts) = 'on_campus' THEN 1 ELSE 0 END) AS f9,
           SUM(CASE WHEN COALESCE(r.whereabouts, s.whereabouts) = 'home' THEN 1 ELSE 0 END) AS f10,
           SUM(CASE WHEN COALESCE(r.whereabouts, s.whereabouts) NOT IN ('on_campus', 'home') THEN 1 ELSE 0 END)
               AS f11"""

_ROLLUP_SQL = """
SELECT c.*, k.name AS class_name, g.id AS grade_id, g.name AS grade_name, co.id AS college_id,
       co.name AS college_name, ca.id AS campus_id, ca.name AS campus_name, u.id AS university_id,
       u.name AS university_name
FROM (
    SELECT {slot_code} AS slot_code, s.school_class_id,{figure_sums},
           {tag_sums}
    FROM {student} s
    JOIN {slot} sl ON sl.campus_id = s.campus_id AND sl.code IN ({slots}) AND sl.active
    LEFT JOIN {report} r ON r.student_id = s.id AND r.date = %(date)s AND r.slot_id = sl.id
    LEFT JOIN ({excused}) ex ON ex.student_id = s.id
    LEFT JOIN (
        SELECT student_id, {tag_flags}
        FROM {tag}
        WHERE since <= %(date)s AND (until IS NULL OR until >= %(date)s) {of_unit}
        GROUP BY student_id
    ) tg ON tg.student_id = s.id
    WHERE s.enrolment_status = %(enrolled)s {unit_filter}
    GROUP BY {slot_group}s.school_class_id
) c
JOIN {klass} k ON k.id = c.school_class_id
JOIN {grade} g ON g.id = k.grade_id
JOIN {college} co ON co.id = g.college_id
JOIN {campus} ca ON ca.id = co.campus_id
JOIN {university} u ON u.id = ca.university_id
"""

#: Every level from the classes of :data:`_ROLLUP_SQL` (``{classes}``: a CTE or a
#: table holding them): the classes themselves and each level above summed from them
#: — one definition of the tree's sums for the live figures and the nightly snapshots
#: (portable SQL: a UNION ALL of GROUP BYs, so SQLite runs it too).
_LEVELS_SQL = """
SELECT slot_code, 'school_class' AS level, school_class_id AS unit_id, grade_id AS parent_id, campus_id,
       college_id, grade_id, class_name AS unit_name, {figures}, {tags}
FROM {classes}
UNION ALL
SELECT slot_code, 'grade', grade_id, college_id, campus_id, college_id, grade_id, MAX(grade_name), {sum_figures},
       {sum_tags}
FROM {classes} GROUP BY slot_code, grade_id, college_id, campus_id
UNION ALL
SELECT slot_code, 'college', college_id, campus_id, campus_id, college_id, NULL, MAX(college_name), {sum_figures},
       {sum_tags}
FROM {classes} GROUP BY slot_code, college_id, campus_id
UNION ALL
SELECT slot_code, 'campus', campus_id, university_id, campus_id, NULL, NULL, MAX(campus_name), {sum_figures},
       {sum_tags}
FROM {classes} GROUP BY slot_code, campus_id, university_id
UNION ALL
SELECT slot_code, 'university', university_id, NULL, NULL, NULL, NULL, MAX(university_name), {sum_figures},
       {sum_tags}
FROM {classes} GROUP BY slot_code, university_id
"""
_FIGURE_COLUMNS = [f"f{i}" for i in range(len(FIGURES))]
_TAG_COLUMNS = [f"t{i}" for i in range(len(TAG_KINDS))]
#: The columns of :data:`_LEVELS_SQL` after its first (the slot code), in order.
_LEVEL_COLUMNS = ["level", "unit_id", "parent_id", "campus_id", "college_id", "grade_id", "unit_name"]


def _levels_sql(classes: str) -> str:
    return _LEVELS_SQL.format(
        classes=classes,
        figures=", ".join(_FIGURE_COLUMNS),
        tags=", ".join(_TAG_COLUMNS),
        sum_figures=", ".join(f"SUM({c}) AS {c}" for c in _FIGURE_COLUMNS),
        sum_tags=", ".join(f"SUM({c}) AS {c}" for c in _TAG_COLUMNS),
    )


#: The nightly compile's classes: the class statement of :data:`_ROLLUP_SQL`, kept in
#: a temporary table of a few thousand rows.  ``CREATE TABLE … AS`` may run in parallel
#: on PostgreSQL, where an ``INSERT … SELECT`` reading 100,000 students may not.
_CLASSES_TABLE = "tongxin_rollup_classes"


def _tags_json(values: list[str]) -> str:
    """A JSON object of the tag counts that are not zero, in this database's SQL."""
    pairs = ", ".join(f"'{tag}', NULLIF({v}, 0)" for tag, v in zip(TAG_KINDS, values, strict=True))
    if connection.vendor == "postgresql":
        return f"jsonb_strip_nulls(jsonb_build_object({pairs}))"
    return f"json_patch('{{}}', json_object({pairs}))"  # a merge patch drops the nulls


def _compile_sql() -> str:
    """Every level of the classes in the temporary table, written as the day's snapshots."""
    qn = connection.ops.quote_name
    names = ["date", "slot_code", *_LEVEL_COLUMNS, *FIGURES, "tags", "computed_at"]
    columns = ", ".join(qn(RollupSnapshot._meta.get_field(name).column) for name in names)
    return (
        f"INSERT INTO {qn(RollupSnapshot._meta.db_table)} ({columns}) "
        f"SELECT %(date)s, %(slot)s, {', '.join(f'l.{c}' for c in _LEVEL_COLUMNS + _FIGURE_COLUMNS)}, "
        f"{_tags_json([f'l.{c}' for c in _TAG_COLUMNS])}, %(now)s "
        f"FROM ({_levels_sql(_CLASSES_TABLE)}) l"
    )


#: The student column that narrows a live roll-up to one unit's subtree.
_UNIT_COLUMNS = {
    Level.SCHOOL_CLASS: "school_class_id",
    Level.GRADE: "grade_id",
    Level.COLLEGE: "college_id",
    Level.CAMPUS: "campus_id",
}


#: Units small enough (a few hundred students) that their live roll-up reads their
#: students' excusals and key-attention tags only; for a college or a campus, reading
#: them all once is as fast (measured at 100,000 students).
_NARROWED = frozenset({Level.SCHOOL_CLASS, Level.GRADE})


def unit_students_filter(level: str) -> str:
    """``AND student_id IN`` the students of unit ``%(unit)s`` of ``level`` (a class, a
    grade, a college or a campus): narrows a subquery of per-student rows to a unit."""
    return f"AND student_id IN (SELECT id FROM {Student._meta.db_table} WHERE {_UNIT_COLUMNS[level]} = %(unit)s)"


def excused_students_sql(of_unit: str = "") -> str:
    """The students excused on ``%(date)s`` (:func:`reports.selectors.excusals_on` in
    SQL), one row each, narrowed by ``of_unit`` (:func:`unit_students_filter`): whom the
    roll-up and the class's roster do not expect."""
    return (
        f"SELECT DISTINCT student_id FROM {Excusal._meta.db_table} "
        f"WHERE starts_on <= %(date)s AND (ends_on IS NULL OR ends_on >= %(date)s) {of_unit}"
    )


def _sql(level: str | None, slots: int = 1) -> str:
    """The class statement for the slot codes ``%(slot0)s`` … (``slots`` of them), for
    every student or — ``level`` — for the students of unit ``%(unit)s`` of that level."""
    unit_filter = of_unit = ""
    if level is not None and level != Level.UNIVERSITY:
        column = _UNIT_COLUMNS[level]
        unit_filter = f"AND s.{column} = %(unit)s"
        if level in _NARROWED:
            of_unit = unit_students_filter(level)
    return _ROLLUP_SQL.format(
        figure_sums=_FIGURE_SUMS,
        tag_sums=",\n           ".join(f"COALESCE(SUM(tg.t{i}), 0) AS t{i}" for i in range(len(TAG_KINDS))),
        tag_flags=", ".join(
            f"MAX(CASE WHEN tag = %(tag{i})s THEN 1 ELSE 0 END) AS t{i}" for i in range(len(TAG_KINDS))
        ),
        student=Student._meta.db_table,
        slot=CheckinSlot._meta.db_table,
        report=DailyReport._meta.db_table,
        excused=excused_students_sql(of_unit),
        tag=KeyAttentionTag._meta.db_table,
        klass=SchoolClass._meta.db_table,
        grade=Grade._meta.db_table,
        college=College._meta.db_table,
        campus=Campus._meta.db_table,
        university=University._meta.db_table,
        unit_filter=unit_filter,
        of_unit=of_unit,
        slots=", ".join(f"%(slot{i})s" for i in range(slots)),
        # one slot (the nightly compile): its code is a constant, not a grouping column
        slot_code="sl.code" if slots > 1 else f"CAST(%(slot0)s AS VARCHAR({_SLOT_CODE_LENGTH}))",
        slot_group="sl.code, " if slots > 1 else "",
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


def _analytic_transaction():
    """The transaction of a statement that reads the whole day.  On PostgreSQL: no JIT,
    set for this transaction only.  Elsewhere none (SQLite's transactions here take the
    write lock)."""
    if connection.vendor != "postgresql":
        return contextlib.nullcontext()
    return transaction.atomic()


#: What the roll-up's statements run under on PostgreSQL (transaction-local): no JIT
#: compilation, which cost more than half of the class statement's time.
ROLLUP_SESSION_SETTINGS = "SELECT set_config('jit', 'off', true)"


def _params(on: dt.date, slot_codes: list[str]) -> dict:
    params = {"date": on, "enrolled": EnrolmentStatus.ENROLLED.value, "fever": FEVER_AT}
    params.update({f"slot{i}": code for i, code in enumerate(slot_codes)})
    params.update({f"tag{i}": tag for i, tag in enumerate(TAG_KINDS)})
    return params


def rollup_compute(*, on: dt.date, slot_code: str, level: str | None = None, unit_id: int | None = None) -> Rollup:
    """Compute the figures of ``on``/``slot_code`` for every unit, or — for the live
    "today so far" of a dashboard — only for the subtree of (``level``, ``unit_id``)
    and the units above it on the way to the university (their figures then count that
    subtree only).  Reads only; one query."""
    return rollup_compute_slots(on=on, slot_codes=[slot_code], level=level, unit_id=unit_id)[slot_code]


def rollup_compute_slots(
    *, on: dt.date, slot_codes: list[str], level: str | None = None, unit_id: int | None = None
) -> dict[str, Rollup]:
    """:func:`rollup_compute` for several slot codes of the same day in one query (a
    day's live page shows every slot): a :class:`Rollup` per code, empty where no
    student checks in at that code."""
    codes = list(dict.fromkeys(slot_codes))
    if not codes:
        return {}
    params = _params(on, codes)
    if level is not None and level != Level.UNIVERSITY:
        params["unit"] = unit_id
    with _analytic_transaction(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(ROLLUP_SESSION_SETTINGS)
        cursor.execute(f"WITH c AS ({_sql(level, len(codes))}) {_levels_sql('c')}", params)
        rows = cursor.fetchall()
    n, width = 1 + len(_LEVEL_COLUMNS), len(FIGURES)
    out = {code: Rollup(date=on, slot_code=code, units={}) for code in codes}
    for row in rows:
        code, level, unit_id, parent_id, campus_id, college_id, grade_id, name = row[:n]
        out[code].units[(level, unit_id)] = UnitFigures(
            level=level,
            unit_id=unit_id,
            name=name,
            parent_id=parent_id,
            campus_id=campus_id,
            college_id=college_id,
            grade_id=grade_id,
            counts=dict(zip(FIGURES, (int(v) for v in row[n : n + width]), strict=True)),
            tags={tag: int(v) for tag, v in zip(TAG_KINDS, row[n + width :], strict=True) if v},
        )
    return out


@transaction.atomic
def rollup_compile(*, on: dt.date, slot_code: str) -> RollupRun:
    """Compile and store the snapshots of ``on``/``slot_code`` for the whole university:
    the class statement of :func:`rollup_compute` fills a temporary table, and one
    statement sums each level above from it straight into the snapshot table
    (:data:`_COMPILE_SQL`).

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
    RollupSnapshot.objects.filter(date=on, slot_code=slot_code).delete()
    params = _params(on, [slot_code])
    create = f"CREATE TEMPORARY TABLE {_CLASSES_TABLE} AS {_sql(None)}"
    prep = {name: RollupSnapshot._meta.get_field(name) for name in ("date", "computed_at")}
    write = {
        "date": prep["date"].get_db_prep_value(on, connection),
        "slot": slot_code,
        "now": prep["computed_at"].get_db_prep_value(now, connection),
    }
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_CLASSES_TABLE}")
        if connection.vendor == "postgresql":
            cursor.execute(ROLLUP_SESSION_SETTINGS)
        cursor.execute(create, params)
        cursor.execute(_compile_sql(), write)
        run.units = cursor.rowcount
        cursor.execute(f"DROP TABLE {_CLASSES_TABLE}")
    if run.units < 0:  # Python's sqlite3 does not count the rows of every INSERT … SELECT
        run.units = RollupSnapshot.objects.filter(date=on, slot_code=slot_code).count()
    run.finished_at = timezone.now()
    run.seconds = round(time.monotonic() - started, 3)
    run.save()
    return run


def rollup_slot_codes(on: dt.date) -> list[str]:
    """The slot codes some campus runs (the roll-up is compiled once per code)."""
    return sorted(set(CheckinSlot.objects.filter(active=True).values_list("code", flat=True)))


def rollup_compile_day(*, on: dt.date) -> list[RollupRun]:
    """Compile every slot code of ``on`` (what the nightly beat task runs)."""
    return [rollup_compile(on=on, slot_code=code) for code in rollup_slot_codes(on)]
