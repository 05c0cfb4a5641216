"""Reads of the dashboards (数据看板), the counsellor's morning page (今日工作) and the
one-student page (一生一档); every function takes the acting user and goes through
:func:`campuses.scoping.scope_for`.

Product rules (DESIGN.md, "Interfaces"; issue 5):

- a dashboard shows one unit of the teaching tree (university → campus → college →
  grade → class) that the user may see, its figures per check-in slot, its child
  units with the same figures (each a drill-down), a 30-day trend, the sign-off state
  of the last 7 days, the abnormal reports, the follow-up list, the missing list and
  the key-attention groups; at class level, the students of the class;
- past days read the nightly :class:`~reports.rollup_models.RollupSnapshot` only,
  never the raw reports; today's figures come from
  :func:`reports.rollup.rollup_compute`, the code that compiles the snapshots;
- a fixed number of queries whatever the size of the scope: the unit and its
  children are one snapshot query by (date, level, parent_id), the trend one query by
  (level, unit_id, date range), every list one count and one page;
- health details (abnormal figures, temperatures, tags, contacts, excusals) only for
  roles in :data:`campuses.scoping.HEALTH_ROLES`; the buttons that chase students
  (contacted, proxy report, follow-up) only where the user chases that student.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import EmptyResultSet, PermissionDenied
from django.db import connection
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campuses.bulk import convert_row, instance_from_row, per_vendor, quoted_columns, select_list
from campuses.models import Campus, College, Grade, SchoolClass, University
from campuses.scoping import HEALTH_ROLES, Scope, scope_for
from reports.models import (
    CheckinSlot,
    DailyReport,
    Excusal,
    ExcusalReason,
    ReportFlag,
    ReportSource,
    SlotCode,
    SlotState,
)
from reports.rollup import UnitFigures, excused_students_sql, rollup_compute_slots, unit_students_filter
from reports.rollup_models import FIGURES, Level, RollupSnapshot, SignOff, SignOffState
from reports.selectors import (
    CHASE_ROLES,
    NAMES_ONLY_ROLES,
    contact_list,
    excusal_list,
    follow_up_list,
    local_now,
    missing_details,
    missing_list_detailed,
    report_list,
    report_missing,
)
from reports.signoff import CONFIRM_ROLES, SIGNOFF_LEVELS
from students.masking import mask_phone, shown_id_number, shown_phone
from students.models import AttentionTag, ContactLog, EnrolmentStatus, KeyAttentionTag, Student

#: The levels of the teaching tree, from the top down.
TOP_DOWN: tuple[str, ...] = (Level.UNIVERSITY, Level.CAMPUS, Level.COLLEGE, Level.GRADE, Level.SCHOOL_CLASS)
CHILD_LEVEL: dict[str, str] = dict(itertools.pairwise(TOP_DOWN))
LEVEL_MODELS = {
    Level.UNIVERSITY: University,
    Level.CAMPUS: Campus,
    Level.COLLEGE: College,
    Level.GRADE: Grade,
    Level.SCHOOL_CLASS: SchoolClass,
}
#: From a unit up to the university: each level's foreign key to its parent.
_PARENT_ATTR = {
    Level.CAMPUS: "university",
    Level.COLLEGE: "campus",
    Level.GRADE: "college",
    Level.SCHOOL_CLASS: "grade",
}
#: The column of a student (and of a report: copies taken at submit time) naming the unit.
UNIT_COLUMN = {
    Level.UNIVERSITY: "campus__university_id",
    Level.CAMPUS: "campus_id",
    Level.COLLEGE: "college_id",
    Level.GRADE: "grade_id",
    Level.SCHOOL_CLASS: "school_class_id",
}
#: Rows of a list shown on a dashboard; the total is always counted.
LIST_LIMIT = 50
#: Rows of a list on the morning page (one counsellor's students).
MORNING_LIMIT = 300
TREND_DAYS = 30
SIGNOFF_DAYS = 7
_SLOT_ORDER = {code: n for n, code in enumerate(SlotCode.values)}


#: Labels (lazy: translated when shown) by value; an unknown value shows as itself.
_SLOT_LABELS = dict(SlotCode.choices)
_FLAG_LABELS = dict(ReportFlag.choices)
_SOURCE_LABELS = dict(ReportSource.choices)


def slot_label(code: str) -> str:
    return _SLOT_LABELS.get(code, code)


def ordered_slot_codes(codes: Iterable[str]) -> list[str]:
    """Slot codes in the order of the day (morning, noon, evening)."""
    return sorted(set(codes), key=lambda c: (_SLOT_ORDER.get(c, 99), c))


def today() -> dt.date:
    return local_now().date()


# ---------------------------------------------------------------------------
# Units
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class UnitRef:
    """A unit of the teaching tree as the pages name it: ``level:id`` and its name."""

    level: str
    id: int
    name: str

    @property
    def key(self) -> str:
        return f"{self.level}:{self.id}"

    @property
    def level_label(self) -> str:
        return Level(self.level).label


@dataclass(frozen=True)
class UnitNode:
    """A unit with its ancestors, from the university down to itself (inclusive)."""

    ref: UnitRef
    chain: tuple[UnitRef, ...]

    @property
    def level(self) -> str:
        return self.ref.level

    @property
    def id(self) -> int:
        return self.ref.id

    @property
    def key(self) -> str:
        return self.ref.key

    @property
    def child_level(self) -> str | None:
        return CHILD_LEVEL.get(self.level)

    def is_within(self, other: UnitNode) -> bool:
        """Whether this unit is ``other`` or below it."""
        return other.ref in self.chain


def parse_unit(value: str | None) -> tuple[str, int] | None:
    """``"college:12"`` → ``("college", 12)``; None for anything else."""
    level, _sep, raw_id = (value or "").partition(":")
    if level not in LEVEL_MODELS or not raw_id.isdigit() or not 0 < len(raw_id) <= 15:
        return None
    return level, int(raw_id)


@per_vendor
def _chain_sql() -> dict[str, tuple[str, str]]:
    """Per level: the statement reading units of that level with their ancestors — the
    (id, name) of each, from the university down to the unit — and the unit's quoted
    id column, to add the ``WHERE``."""
    qn = connection.ops.quote_name
    statements = {}
    for level in TOP_DOWN:
        columns, joins = [], []
        current, n = level, 0
        while True:
            model = LEVEL_MODELS[current]
            pk, name = qn(model._meta.pk.column), qn(model._meta.get_field("name").column)
            columns[:0] = [f"u{n}.{pk}", f"u{n}.{name}"]
            parent_attr = _PARENT_ATTR.get(current)
            if parent_attr is None:
                break
            parent = LEVEL_MODELS[TOP_DOWN[TOP_DOWN.index(current) - 1]]
            fk = qn(model._meta.get_field(parent_attr).column)
            joins.append(
                f"JOIN {qn(parent._meta.db_table)} u{n + 1} ON u{n + 1}.{qn(parent._meta.pk.column)} = u{n}.{fk}"
            )
            current, n = TOP_DOWN[TOP_DOWN.index(current) - 1], n + 1
        table = qn(LEVEL_MODELS[level]._meta.db_table)
        statements[level] = (
            f"SELECT {', '.join(columns)} FROM {table} u0 {' '.join(joins)}",
            f"u0.{qn(LEVEL_MODELS[level]._meta.pk.column)}",
        )
    return statements


def _nodes(level: str, ids: Iterable[int] | QuerySet | None = None) -> list[UnitNode]:
    """The units of ``level`` whose id is one of ``ids`` — ids, or a queryset of the
    units' ``pk`` values (a scope's) — with their chains, in one statement (all units
    of the level for None).  Every dashboard page asks for the user's top units, and
    the ORM's compilation of a ``select_related`` lookup cost several times its round
    trip (2.4 against 0.5 ms on the benchmark's machine)."""
    sql, id_column = _chain_sql()[level]
    params: list = []
    if isinstance(ids, QuerySet):
        try:
            subquery, sub_params = ids.query.sql_with_params()
        except EmptyResultSet:  # a scope that reaches no unit
            return []
        sql, params = f"{sql} WHERE {id_column} IN ({subquery})", list(sub_params)
    elif ids is not None:
        params = sorted(set(ids))
        if not params:
            return []
        sql = f"{sql} WHERE {id_column} IN ({', '.join(['%s'] * len(params))})"
    levels = TOP_DOWN[: TOP_DOWN.index(level) + 1]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    nodes = []
    for row in rows:
        chain = tuple(UnitRef(lv, row[2 * i], row[2 * i + 1]) for i, lv in enumerate(levels))
        nodes.append(UnitNode(ref=chain[-1], chain=chain))
    return nodes


def dashboard_units(*, user) -> list[UnitNode]:
    """The top units of ``user``'s scope in the teaching tree: the units of their
    duties, less those inside another of them (the university for someone who sees
    everything).  One query per level at which the user holds a duty."""
    scope = scope_for(user)
    nodes: list[UnitNode] = []
    if scope.everything:
        nodes = _nodes(Level.UNIVERSITY)
    else:
        by_level: dict[str, set[int]] = {}
        for grant in scope.grants:
            if grant.level in LEVEL_MODELS:
                by_level.setdefault(grant.level, set()).add(grant.unit_id)
        for level in TOP_DOWN:
            if level in by_level:
                nodes += _nodes(level, by_level[level])
    top = [n for n in nodes if not any(o is not n and o.ref in n.chain[:-1] for o in nodes)]
    return sorted(set(top), key=lambda n: (TOP_DOWN.index(n.level), n.ref.name, n.id))


def dashboard_unit(*, user, level: str, unit_id: int) -> UnitNode | None:
    """The unit (level, id) with its ancestors if ``user`` may see it, else None."""
    if level not in LEVEL_MODELS:
        return None
    nodes = _nodes(level, scope_for(user).units(LEVEL_MODELS[level]).filter(pk=unit_id).values("pk"))
    return nodes[0] if nodes else None


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Figures:
    """The figures of one unit for one date and slot (the snapshot's columns)."""

    expected: int = 0
    reported: int = 0
    missing: int = 0
    excused: int = 0
    late: int = 0
    proxy: int = 0
    abnormal: int = 0
    fever: int = 0
    quarantine: int = 0
    on_campus: int = 0
    home: int = 0
    elsewhere: int = 0
    tags: dict[str, int] = field(default_factory=dict, hash=False)

    @classmethod
    def of(cls, source: UnitFigures | RollupSnapshot) -> Figures:
        if isinstance(source, UnitFigures):
            return cls(**source.counts, tags=dict(source.tags))
        return cls(**{name: getattr(source, name) for name in FIGURES}, tags=dict(source.tags or {}))

    @property
    def completion(self) -> float | None:
        return round(100 * self.reported / self.expected, 1) if self.expected else None

    def tag_rows(self) -> list[tuple[str, str, int]]:
        """(tag, label, students) in the order of the key-attention groups."""
        order = {tag: n for n, tag in enumerate(AttentionTag.values)}
        return [
            (tag, AttentionTag(tag).label if tag in order else tag, n)
            for tag, n in sorted(self.tags.items(), key=lambda item: (order.get(item[0], 99), item[0]))
            if n
        ]


@dataclass(frozen=True)
class SlotFigures:
    """A unit's figures for one slot of the day, and its children's."""

    code: str
    figures: Figures
    children: tuple[tuple[UnitRef, Figures], ...] = ()
    state: str | None = None  # today: upcoming, open or closed; None for a past day

    @property
    def label(self) -> str:
        return slot_label(self.code)

    @property
    def state_label(self) -> str:
        return SlotState(self.state).label if self.state else ""

    @property
    def upcoming(self) -> bool:
        """Today's slot has not opened yet: nobody can have reported it, nobody is missing."""
        return self.state == SlotState.UPCOMING


@per_vendor
def _active_slots_sql() -> tuple[str, str, list]:
    """The active slots' columns that decide their state, for every campus and for one
    (a raw statement like the snapshot reads below: every live page makes it)."""
    table, c = quoted_columns(CheckinSlot)
    columns, fields = select_list(CheckinSlot, names=("code", "opens_at", "due_at", "closes_at"))
    everywhere = f"SELECT {columns} FROM {table} WHERE {c['active']} = %s"
    return everywhere, f"{everywhere} AND {c['campus']} = %s", fields


def _slot_states(node: UnitNode, on: dt.date) -> dict[str, str]:
    """Today's active slot codes for the unit's campus (or all campuses), each with its
    state now: open if one campus's slot is open, closed once all are (one query)."""
    everywhere, one_campus, fields = _active_slots_sql()
    campus = next((ref for ref in node.chain if ref.level == Level.CAMPUS), None)
    with connection.cursor() as cursor:
        if campus is None:
            cursor.execute(everywhere, [True])
        else:
            cursor.execute(one_campus, [True, campus.id])
        slots = [instance_from_row(CheckinSlot, fields, row) for row in cursor.fetchall()]
    now = local_now()
    states: dict[str, set[str]] = {}
    for slot in slots:
        states.setdefault(slot.code, set()).add(slot.state(on, now))
    order = (SlotState.OPEN, SlotState.CLOSED, SlotState.UPCOMING)
    return {code: next(s for s in order if s in found) for code, found in states.items()}


#: Levels whose live figures may be served from the cache for a short while: their
#: roll-up reads a whole campus or university, and their viewers (coordinators, the
#: student-affairs office) do not chase students from the page.  Colleges, grades and
#: classes are always computed afresh, so a counsellor sees their own proxy report.  The
#: lists of those two levels' pages are kept with their figures (reports.live_lists).
CACHED_LEVELS = frozenset({Level.CAMPUS, Level.UNIVERSITY})


def live_cache_seconds() -> int:
    """``TONGXIN["DASHBOARD_LIVE_SECONDS"]`` (default 60; 0 turns the cache off)."""
    return int(settings.TONGXIN.get("DASHBOARD_LIVE_SECONDS", 60))


def _compute_live(node: UnitNode, on: dt.date, codes: list[str]) -> dict[str, tuple[Figures, tuple]]:
    """Run the live roll-up (the nightly roll-up's own code) for every slot code of the
    day at once: one query (with its transaction on PostgreSQL)."""
    child = node.child_level
    out = {}
    rollups = rollup_compute_slots(on=on, slot_codes=codes, level=node.level, unit_id=node.id)
    for code in codes:
        rollup = rollups[code]
        unit = rollup.get(node.level, node.id)
        if unit is None:
            continue  # no student of this unit checks in at this slot
        children = ()
        if child is not None:
            children = tuple(
                (UnitRef(child, u.unit_id, u.name), Figures.of(u)) for u in rollup.children(node.level, node.id)
            )
        out[code] = (Figures.of(unit), children)
    return out


def _live_figures(node: UnitNode, on: dt.date, *, fresh: bool = False) -> tuple[list[SlotFigures], dt.datetime]:
    """Today so far: one query for the slots and their state now, then the live
    roll-up — for a campus or the university possibly as computed less than
    :func:`live_cache_seconds` ago, unless ``fresh``.  Returns the figures and when
    they were computed."""
    states = _slot_states(node, on)
    codes = ordered_slot_codes(states)
    seconds = live_cache_seconds() if node.level in CACHED_LEVELS else 0
    key = f"tongxin:dashboard:live:{on.isoformat()}:{node.key}:{','.join(codes)}"
    cached = None
    if seconds > 0 and not fresh:
        try:
            cached = cache.get(key)
        except Exception:  # a cache outage must not take the dashboard down
            cached = None
    if cached is None:
        cached = (timezone.now(), _compute_live(node, on, codes))
        if seconds > 0:
            with contextlib.suppress(Exception):
                cache.set(key, cached, seconds)
    computed_at, figures = cached
    slots = [
        SlotFigures(code=code, figures=figures[code][0], children=figures[code][1], state=states[code])
        for code in codes
        if code in figures
    ]
    return slots, computed_at


# The reads every dashboard page makes (its snapshots, trend and sign-off grid) are raw
# statements, their SQL built once per database vendor (campuses.bulk.per_vendor): the
# ORM's compilation of these three small lookups cost more than their round trips (1.76
# against 0.5 ms a page at 100,000 students).


@per_vendor
def _snapshots_of_day_sql() -> tuple[str, list]:
    table, c = quoted_columns(RollupSnapshot)
    columns, fields = select_list(RollupSnapshot, "s")
    sql = (
        f"SELECT {columns} FROM {table} s WHERE s.{c['date']} = %s "
        f"AND ((s.{c['level']} = %s AND s.{c['unit_id']} = %s) OR (s.{c['level']} = %s AND s.{c['parent_id']} = %s)) "
        f"ORDER BY s.{c['unit_name']}, s.{c['unit_id']}"
    )
    return sql, fields


def _snapshot_figures(node: UnitNode, on: dt.date) -> list[SlotFigures]:
    """A past day from the stored snapshots: the unit and its children in one query."""
    child = node.child_level
    sql, fields = _snapshots_of_day_sql()
    day = connection.ops.adapt_datefield_value(on)
    with connection.cursor() as cursor:
        cursor.execute(sql, [day, node.level, node.id, child, node.id if child else None])
        rows = [instance_from_row(RollupSnapshot, fields, row) for row in cursor.fetchall()]
    own = {r.slot_code: r for r in rows if r.level == node.level and r.unit_id == node.id}
    out = []
    for code in ordered_slot_codes(own):
        children = tuple(
            (UnitRef(child, r.unit_id, r.unit_name), Figures.of(r))
            for r in rows
            if r.slot_code == code and r.level == child and r.parent_id == node.id
        )
        out.append(SlotFigures(code=code, figures=Figures.of(own[code]), children=children))
    return out


@per_vendor
def _trend_sql() -> tuple[str, list]:
    table, c = quoted_columns(RollupSnapshot)
    columns, fields = select_list(RollupSnapshot, names=("date", "expected", "reported", "abnormal"))
    sql = (
        f"SELECT {columns} FROM {table} WHERE {c['level']} = %s AND {c['unit_id']} = %s "
        f"AND {c['slot_code']} = %s AND {c['date']} >= %s AND {c['date']} <= %s"
    )
    return sql, fields


def _trend(node: UnitNode, on: dt.date, slot_code: str, live: Figures | None, is_today: bool) -> dict:
    """The 30 days up to ``on``: completion % and abnormal per day, from the snapshots
    (one query on the (level, unit_id, date) index) and, for today, the live figures."""
    start = on - dt.timedelta(days=TREND_DAYS - 1)
    end = on - dt.timedelta(days=1) if is_today else on
    sql, fields = _trend_sql()
    adapt = connection.ops.adapt_datefield_value
    with connection.cursor() as cursor:
        cursor.execute(sql, [node.level, node.id, slot_code, adapt(start), adapt(end)])
        rows = [convert_row(RollupSnapshot, fields, row) for row in cursor.fetchall()]
    stored = {day: (expected, reported, abnormal) for day, expected, reported, abnormal in rows}
    if is_today and live is not None:
        stored[on] = (live.expected, live.reported, live.abnormal)
    dates, completion, abnormal = [], [], []
    for n in range(TREND_DAYS):
        day = start + dt.timedelta(days=n)
        dates.append(day.strftime("%m-%d"))
        expected, reported, ab = stored.get(day, (None, None, None))
        completion.append(round(100 * reported / expected, 1) if expected else None)
        abnormal.append(ab)
    return {
        "dates": dates,
        "completion": completion,
        "abnormal": abnormal,
        "labels": {"completion": str(_("完成率(%)")), "abnormal": str(_("异常人数"))},
    }


@dataclass(frozen=True)
class SignOffRow:
    ref: UnitRef
    cells: tuple[tuple[dt.date, str | None], ...]  # (day, state or None)


@per_vendor
def _signoffs_sql() -> tuple[str, list]:
    """The sign-offs of a unit and of some of its children between two dates; the
    children's ids are a list of ``{child_ids}`` placeholders, formatted per call."""
    table, c = quoted_columns(SignOff)
    columns, fields = select_list(SignOff, names=("date", "level", "unit_id", "state"))
    sql = (
        f"SELECT {columns} FROM {table} WHERE {c['date']} >= %s AND {c['date']} <= %s "
        f"AND (({c['level']} = %s AND {c['unit_id']} = %s) "
        f"OR ({c['level']} = %s AND {c['unit_id']} IN ({{child_ids}})))"
    )
    return sql, fields


def _signoff_grid(node: UnitNode, children: Iterable[UnitRef], on: dt.date) -> tuple[list[dt.date], list[SignOffRow]]:
    """The sign-off state of the unit and its child units for the 7 days up to ``on``:
    one query."""
    days = [on - dt.timedelta(days=n) for n in range(SIGNOFF_DAYS - 1, -1, -1)]
    units: list[UnitRef] = []
    if node.level in SIGNOFF_LEVELS:
        units.append(node.ref)
    child_refs = [c for c in children if c.level in SIGNOFF_LEVELS]
    units += child_refs
    if not units:
        return days, []
    sql, fields = _signoffs_sql()
    child_ids = sorted({c.id for c in child_refs})
    adapt = connection.ops.adapt_datefield_value
    params = [adapt(days[0]), adapt(days[-1])]
    params += [node.level, node.id] if node.level in SIGNOFF_LEVELS else [None, None]
    params += [child_refs[0].level if child_refs else None, *child_ids]
    with connection.cursor() as cursor:
        cursor.execute(sql.format(child_ids=", ".join(["%s"] * len(child_ids)) or "NULL"), params)
        found = [convert_row(SignOff, fields, row) for row in cursor.fetchall()]
    states = {(level, unit_id, day): state for day, level, unit_id, state in found}
    rows = [SignOffRow(ref=u, cells=tuple((d, states.get((u.level, u.id, d))) for d in days)) for u in units]
    return days, rows


# ---------------------------------------------------------------------------
# Lists
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MissingRow:
    id: int
    student_number: str
    name: str
    class_name: str
    phone: str = ""
    counsellor: str = ""
    last_contact_at: dt.datetime | None = None
    last_contact_outcome: str = ""
    last_contact_by: str = ""
    may_chase: bool = False


@dataclass(frozen=True)
class ListPage:
    """The first rows of a list and how many there are in all."""

    rows: list
    total: int
    detailed: bool = True

    @property
    def truncated(self) -> bool:
        return self.total > len(self.rows)


def missing_page(
    *,
    user,
    on: dt.date,
    slot_code: str,
    students: QuerySet[Student],
    limit: int,
    total: int | None = None,
) -> ListPage | None:
    """The missing list (未报名单) of ``students`` as ``user`` may see it, or None if
    they may not see it at all: the first page, and the count only where the page is
    full and the caller does not know the ``total`` (a dashboard's live roll-up, where
    the user sees the whole unit): counting a campus's missing students is an
    anti-join over every one of them, the first page stops after ``limit`` rows."""
    try:
        qs, detailed = report_missing(user=user, on=on, slot_code=slot_code, students=students)
    except PermissionDenied:
        return None
    if not detailed:
        rows = [
            MissingRow(id=s.pk, student_number=s.student_number, name=s.name, class_name=s.school_class.name)
            for s in qs[:limit]
        ]
        return ListPage(rows=rows, total=_page_total(rows, limit, qs, total), detailed=False)
    counted = qs
    qs = qs.annotate(may_chase=scope_for(user).role_flag(CHASE_ROLES))
    rows = [
        MissingRow(
            id=s.pk,
            student_number=s.student_number,
            name=s.name,
            class_name=s.school_class.name,
            phone=shown_phone(s, bool(s.pii_phone)),
            counsellor=s.counsellor_name or "",
            last_contact_at=s.last_contact_at,
            last_contact_outcome=ContactLog.Outcome(s.last_contact_outcome).label if s.last_contact_outcome else "",
            last_contact_by=s.last_contact_by or "",
            may_chase=bool(s.may_chase),
        )
        for s in missing_details(qs[:limit], on=on)
    ]
    return ListPage(rows=rows, total=_page_total(rows, limit, counted, total))


@dataclass(frozen=True)
class ReportRow:
    id: int
    student_id: int
    student_number: str
    name: str
    class_name: str
    date: dt.date
    slot: str
    temperature: object
    flags: tuple[str, ...]
    abnormal: bool
    suspected_bot: bool
    follow_up: str
    submitted_at: dt.datetime
    source: str
    may_chase: bool

    @property
    def follow_up_open(self) -> bool:
        return self.follow_up == "open"


def _flag_label(flag: str) -> str:
    return str(_FLAG_LABELS.get(flag, flag))


#: The columns a report row of a dashboard list shows: read as values, not as four
#: model instances a row (the report, its student, class and slot).
_REPORT_ROW_COLUMNS = (
    "id",
    "student_id",
    "student__student_number",
    "student__name",
    "school_class__name",
    "date",
    "slot__code",
    "temperature",
    "flags",
    "abnormal",
    "suspected_bot",
    "follow_up",
    "submitted_at",
    "source",
    "may_chase",
)


def _page_total(rows: list, limit: int, qs: QuerySet, known: int | None = None) -> int:
    """How many rows a list has in all, given its first page ``rows`` (at most
    ``limit``): the ``known`` total if the caller has it; else a page that is not full
    is the whole list, and only a full one costs the count (a class's lists are nearly
    always short)."""
    if known is not None:
        return known
    return len(rows) if len(rows) < limit else qs.count()


def _report_page(qs: QuerySet[DailyReport], scope: Scope, limit: int) -> ListPage:
    counted = qs
    qs = qs.annotate(may_chase=scope.role_flag(CHASE_ROLES, prefix="student__"))
    rows = [
        ReportRow(
            id=r["id"],
            student_id=r["student_id"],
            student_number=r["student__student_number"],
            name=r["student__name"],
            class_name=r["school_class__name"],
            date=r["date"],
            slot=slot_label(r["slot__code"]),
            temperature=r["temperature"],
            flags=tuple(_flag_label(f) for f in r["flags"] or ()),
            abnormal=r["abnormal"],
            suspected_bot=r["suspected_bot"],
            follow_up=r["follow_up"],
            submitted_at=r["submitted_at"],
            source=str(_SOURCE_LABELS.get(r["source"], r["source"])),
            may_chase=bool(r["may_chase"]),
        )
        for r in qs.values(*_REPORT_ROW_COLUMNS)[:limit]
    ]
    return ListPage(rows=rows, total=_page_total(rows, limit, counted))


@dataclass(frozen=True)
class RosterRow:
    """A student of a class on the class page; status only for a live day."""

    id: int
    student_number: str
    name: str
    enrolled: bool
    # "reported", "missing", "excused", "pending" (no report yet, the slot not open) or
    # "" (a past day, or not enrolled)
    status: str = ""
    abnormal: bool = False
    temperature: object = None
    health: bool = False


@per_vendor
def _roster_sql() -> tuple[str, list]:
    """The class page's roster: the class's students in the viewer's scope (``{scope}``),
    and for a live day the slot's report of each, whether they are excused, whether
    their campus has the slot, and whether the viewer sees their health (``{health}``)
    — the roll-up's joins (:mod:`reports.rollup`) and its excused students, so the
    roster's states add up to the figures above it (but every student listed: the slot
    an outer join, where the roll-up counts only the students whose campus has it).
    One statement, written once: the ORM's compilation of the same four subqueries made
    the roster 3.3 ms of a page on the benchmark's machine, this statement 0.9 ms.  And
    the fields of the report columns it converts."""
    student_table, s = quoted_columns(Student)
    slot_table, sl = quoted_columns(CheckinSlot)
    report_table, r = quoted_columns(DailyReport)
    excused = excused_students_sql(unit_students_filter(Level.SCHOOL_CLASS))
    sql = (
        f"SELECT s.{s['id']}, s.{s['student_number']}, s.{s['name']}, s.{s['enrolment_status']}, "
        f"r.{r['abnormal']}, r.{r['temperature']}, r.{r['id']}, ex.student_id, sl.{sl['id']}, "
        "CASE WHEN {health} THEN 1 ELSE 0 END "
        f"FROM {student_table} s "
        f"LEFT JOIN {slot_table} sl ON sl.{sl['campus']} = s.{s['campus']} "
        f"AND sl.{sl['code']} = %(slot)s AND sl.{sl['active']} "
        f"LEFT JOIN {report_table} r ON r.{r['student']} = s.{s['id']} AND r.{r['date']} = %(date)s "
        f"AND r.{r['slot']} = sl.{sl['id']} "
        f"LEFT JOIN ({excused}) ex ON ex.student_id = s.{s['id']} "
        f"WHERE s.{s['school_class']} = %(unit)s AND {{scope}} ORDER BY s.{s['student_number']}"
    )
    return sql, [DailyReport._meta.get_field(name) for name in ("abnormal", "temperature")]


def _class_roster(
    scope: Scope, node: UnitNode, on: dt.date, slot_code: str | None, live: bool, *, upcoming: bool = False
) -> list[RosterRow]:
    """The students of a class in the user's scope (one query); for today, whether each
    has reported the slot (health details only where the user may see them).  Before
    the slot opens (``upcoming``) nobody is missing yet: a student without a report is
    pending (待报)."""
    if not (live and slot_code):
        qs = scope.students(Student.objects.filter(school_class_id=node.id)).order_by("student_number")
        return [
            RosterRow(
                id=s["id"],
                student_number=s["student_number"],
                name=s["name"],
                enrolled=s["enrolment_status"] == EnrolmentStatus.ENROLLED,
            )
            for s in qs.values("id", "student_number", "name", "enrolment_status")
        ]
    sql, report_fields = _roster_sql()
    seen, seen_params = scope.student_sql("s")
    health, health_params = scope.student_sql("s", roles=HEALTH_ROLES, name="health")
    params = {
        "slot": slot_code,
        "date": connection.ops.adapt_datefield_value(on),
        "unit": node.id,
        **seen_params,
        **health_params,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql.format(scope=seen, health=health), params)
        found = cursor.fetchall()
    rows = []
    for pk, number, name, enrolment, *report, report_id, excused, slot_id, sees_health in found:
        abnormal, temperature = convert_row(DailyReport, report_fields, report)
        enrolled = enrolment == EnrolmentStatus.ENROLLED
        if not enrolled or slot_id is None:
            status = ""
        elif excused is not None:
            status = "excused"
        elif report_id is not None:
            status = "reported"
        else:
            status = "pending" if upcoming else "missing"
        health = bool(sees_health)
        rows.append(
            RosterRow(
                id=pk,
                student_number=number,
                name=name,
                enrolled=enrolled,
                status=status,
                abnormal=bool(abnormal) and health,
                temperature=temperature if health else None,
                health=health,
            )
        )
    return rows


# ---------------------------------------------------------------------------
# The dashboard
# ---------------------------------------------------------------------------
@dataclass
class Dashboard:
    """Everything one dashboard page shows (see the module docstring)."""

    node: UnitNode
    on: dt.date
    today: dt.date
    live: bool
    slots: list[SlotFigures]
    slot_code: str | None
    show_health: bool
    computed_at: dt.datetime | None  # live figures: when the roll-up ran
    trend: dict
    signoff_days: list[dt.date]
    signoff_rows: list[SignOffRow]
    missing: ListPage | None = None
    # The viewer has a missing list but the slot has not opened: none is listed yet.
    missing_not_started: bool = False
    abnormal: ListPage | None = None
    follow_ups: ListPage | None = None
    roster: list[RosterRow] | None = None

    @property
    def current(self) -> SlotFigures | None:
        return next((s for s in self.slots if s.code == self.slot_code), None)

    @property
    def upcoming(self) -> bool:
        """Today's chosen slot has not opened yet (:attr:`SlotFigures.upcoming`)."""
        current = self.current
        return current is not None and current.upcoming

    @property
    def figures(self) -> Figures | None:
        current = self.current
        return current.figures if current else None

    @property
    def children(self) -> tuple[tuple[UnitRef, Figures], ...]:
        current = self.current
        return current.children if current else ()

    @property
    def child_level_label(self) -> str:
        child = self.node.child_level
        return Level(child).label if child else ""


def dashboard(
    *,
    user,
    node: UnitNode,
    on: dt.date | None = None,
    slot_code: str | None = None,
    lists: bool = True,
    fresh: bool = False,
) -> Dashboard:
    """The dashboard of ``node`` (which the caller got from :func:`dashboard_unit` or
    :func:`dashboard_units`) for day ``on`` (default today; a future day is today) and
    slot ``slot_code`` (default the first slot of the day with figures).  ``lists``
    False leaves a live day's lists to :func:`live_lists` (a caller that may have them
    already); ``fresh`` computes a campus's or the university's live figures even if
    the cache holds some."""
    scope = scope_for(user)
    now_day = today()
    on = min(on or now_day, now_day)
    live = on == now_day
    if live:
        slots, computed_at = _live_figures(node, on, fresh=fresh)
    else:
        slots, computed_at = _snapshot_figures(node, on), None
    codes = [s.code for s in slots]
    if slot_code not in codes:
        # The latest slot of the day that has opened (the first of the day before any has).
        started = [s.code for s in slots if not s.upcoming]
        slot_code = started[-1] if started else (codes[0] if codes else None)
    current = next((s for s in slots if s.code == slot_code), None)
    trend = _trend(node, on, slot_code, current.figures if current else None, live) if slot_code else {}
    child_refs = {ref for s in slots for ref, _figures in s.children}
    signoff_days, signoff_rows = _signoff_grid(node, sorted(child_refs, key=lambda r: (r.name, r.id)), on)
    board = Dashboard(
        node=node,
        on=on,
        today=now_day,
        live=live,
        slots=slots,
        slot_code=slot_code,
        show_health=scope.has_role(*HEALTH_ROLES),
        computed_at=computed_at,
        trend=trend,
        signoff_days=signoff_days,
        signoff_rows=signoff_rows,
    )
    if node.level == Level.SCHOOL_CLASS:
        board.roster = _class_roster(scope, node, on, slot_code, live, upcoming=board.upcoming)
    if lists:
        live_lists(user=user, board=board)
    return board


def live_lists(*, user, board: Dashboard) -> None:
    """Fill a live day's lists on ``board`` as ``user`` may see them: the missing list,
    the abnormal reports and the open follow-ups, each its first :data:`LIST_LIMIT`
    rows and its total.  Past days have none (the snapshots only)."""
    if not board.live or board.slot_code is None:
        return
    scope = scope_for(user)
    node, on, slot_code, current = board.node, board.on, board.slot_code, board.current
    in_unit = {UNIT_COLUMN[node.level]: node.id}
    detailed = missing_list_detailed(user)
    if detailed is not None and board.upcoming:
        # Before the slot opens nobody is missing yet: no list, and nothing to chase.
        board.missing_not_started = True
    elif detailed is not None:
        # Where the list's roles reach the whole unit, its total is the unit's live figure.
        roles = HEALTH_ROLES if detailed else NAMES_ONLY_ROLES
        whole = current and scope.reaches_all_of(((r.level, r.id) for r in node.chain), roles=roles)
        board.missing = missing_page(
            user=user,
            on=on,
            slot_code=slot_code,
            students=Student.objects.filter(**in_unit),
            limit=LIST_LIMIT,
            total=current.figures.missing if whole else None,
        )
    if scope.has_role(*HEALTH_ROLES):
        abnormal = report_list(user=user).filter(date=on, slot__code=slot_code, abnormal=True, **in_unit)
        board.abnormal = _report_page(abnormal.order_by("school_class_id", "student_id"), scope, LIST_LIMIT)
    if scope.has_role(*CHASE_ROLES):
        board.follow_ups = _report_page(follow_up_list(user=user).filter(**in_unit), scope, LIST_LIMIT)


# ---------------------------------------------------------------------------
# The counsellor's morning page
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SignOffItem:
    """One unit-day the user may confirm, with its compiled figures per slot."""

    ref: UnitRef
    day: dt.date
    state: str | None
    compiled: tuple[tuple[str, int, int], ...]  # (slot label, reported, expected)

    @property
    def confirmed(self) -> bool:
        return self.state == SignOffState.CONFIRMED

    @property
    def can_confirm(self) -> bool:
        return bool(self.compiled) and not self.confirmed


@dataclass(frozen=True)
class TagDue:
    """A key-attention tag whose follow-up is due (no contact within its interval)."""

    student_id: int
    student_number: str
    name: str
    class_name: str
    tag: str
    reason: str
    every_days: int
    last_contact_at: dt.datetime | None


@dataclass
class MorningPage:
    today: dt.date
    chases: bool
    missing: list[tuple[str, str, ListPage]]  # (slot code, label, page)
    flagged: ListPage | None
    overdue: ListPage | None
    tags_due: list[TagDue]
    signoffs: list[SignOffItem]


def _confirmable_units(scope: Scope) -> list[UnitRef]:
    """The units of the sign-off chain ``scope`` may confirm (as in
    :func:`reports.signoff.signoff_confirm`): one query per level with such a duty."""
    if scope.everything:
        return [UnitRef(Level.UNIVERSITY, u.pk, u.name) for u in University.objects.all()]
    refs = []
    for level in SIGNOFF_LEVELS:
        if not scope.has_role(*CONFIRM_ROLES[level]):
            continue
        narrowed = scope.narrowed(CONFIRM_ROLES[level])
        refs += [UnitRef(level, pk, name) for pk, name in narrowed.units(LEVEL_MODELS[level]).values_list("pk", "name")]
    return refs


def _signoff_items(scope: Scope, days: list[dt.date]) -> list[SignOffItem]:
    units = _confirmable_units(scope)
    if not units:
        return []
    where = Q(pk__in=[])
    for level in SIGNOFF_LEVELS:
        ids = sorted({u.id for u in units if u.level == level})
        if ids:
            where |= Q(level=level, unit_id__in=ids)
    compiled: dict[tuple[str, int, dt.date], list[tuple[str, int, int]]] = {}
    for day, level, unit_id, code, reported, expected in (
        RollupSnapshot.objects.filter(where, date__in=days)
        .order_by()
        .values_list("date", "level", "unit_id", "slot_code", "reported", "expected")
    ):
        compiled.setdefault((level, unit_id, day), []).append((code, reported, expected))
    states = {
        (level, unit_id, day): state
        for day, level, unit_id, state in SignOff.objects.filter(where, date__in=days)
        .order_by()
        .values_list("date", "level", "unit_id", "state")
    }
    items = []
    for day in days:
        for ref in units:
            figures = sorted(compiled.get((ref.level, ref.id, day), []), key=lambda f: _SLOT_ORDER.get(f[0], 99))
            items.append(
                SignOffItem(
                    ref=ref,
                    day=day,
                    state=states.get((ref.level, ref.id, day)),
                    compiled=tuple((slot_label(code), rep, exp) for code, rep, exp in figures),
                )
            )
    return items


def _tags_due(scope: Scope, students: QuerySet[Student], on: dt.date, now: dt.datetime) -> list[TagDue]:
    """Active key-attention tags with a follow-up interval whose student had no contact
    within it (重点人员跟进): one query; the interval is compared in Python on these
    few rows (a counsellor's tagged students)."""
    last = ContactLog.objects.filter(student_id=OuterRef("student_id")).order_by("-contacted_at", "-id")
    rows = (
        KeyAttentionTag.objects.filter(student__in=students, follow_up_every_days__isnull=False, since__lte=on)
        .filter(Q(until__isnull=True) | Q(until__gte=on))
        .annotate(last_contact_at=Subquery(last.values("contacted_at")[:1]))
        .select_related("student__school_class")
        .order_by("student__school_class_id", "student__student_number", "tag")
    )
    due = []
    for tag in rows[:MORNING_LIMIT]:
        every = max(1, tag.follow_up_every_days)
        last_at = tag.last_contact_at
        if last_at is None or timezone.localtime(last_at).date() <= on - dt.timedelta(days=every):
            due.append(
                TagDue(
                    student_id=tag.student_id,
                    student_number=tag.student.student_number,
                    name=tag.student.name,
                    class_name=tag.student.school_class.name,
                    tag=tag.get_tag_display(),
                    reason=tag.reason,
                    every_days=every,
                    last_contact_at=last_at,
                )
            )
    return due


def morning(*, user) -> MorningPage:
    """The counsellor's morning page (今日工作), in the order it is worked: who has not
    reported in each of today's slots that has opened, today's abnormal and bot-like
    reports, follow-ups left open from earlier days, key-attention follow-ups due, then
    the sign-offs (yesterday's compiled figures and today's).  Lists cover the students
    the user chases; a class monitor gets the names-only missing list of their class."""
    scope = scope_for(user)
    now = local_now()
    on = now.date()
    chases = scope.has_role(*CHASE_ROLES)
    if chases:
        students = Student.objects.filter(scope.student_q(roles=CHASE_ROLES))
    elif scope.has_role(*NAMES_ONLY_ROLES):
        students = Student.objects.filter(scope.student_q(roles=NAMES_ONLY_ROLES))
    else:
        students = Student.objects.none()
    page = MorningPage(today=on, chases=chases, missing=[], flagged=None, overdue=None, tags_due=[], signoffs=[])
    if chases or scope.has_role(*NAMES_ONLY_ROLES):
        slots = CheckinSlot.objects.filter(active=True, campus_id__in=students.values("campus_id"))
        opened = {s.code for s in slots if s.state(on, now) != SlotState.UPCOMING}
        for code in ordered_slot_codes(opened):
            missing = missing_page(user=user, on=on, slot_code=code, students=students, limit=MORNING_LIMIT)
            if missing is not None:
                page.missing.append((code, slot_label(code), missing))
    if chases:
        flagged = (
            report_list(user=user)
            .filter(scope.student_q(prefix="student__", roles=CHASE_ROLES), date=on)
            .filter(Q(abnormal=True) | Q(suspected_bot=True))
            .order_by("-follow_up", "school_class_id", "student_id", "slot_id")  # open before closed
        )
        page.flagged = _report_page(flagged, scope, MORNING_LIMIT)
        page.overdue = _report_page(follow_up_list(user=user).filter(date__lt=on), scope, MORNING_LIMIT)
        page.tags_due = _tags_due(scope, students, on, now)
    page.signoffs = _signoff_items(scope, [on - dt.timedelta(days=1), on])
    return page


# ---------------------------------------------------------------------------
# One student, one page (一生一档)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TimelineEntry:
    """One dated thing about a student, for the time-ordered page."""

    at: dt.datetime
    kind: str  # "report", "contact", "excusal", "tag"; later issues add their own
    kind_label: str
    title: str
    details: tuple[str, ...] = ()
    alert: bool = False


@dataclass
class StudentPage:
    student: Student
    phone: str
    id_number: str
    guardian_phone: str
    health: bool
    may_chase: bool
    since: dt.date
    tags: list[KeyAttentionTag]
    timeline: list[TimelineEntry]
    grid_days: list[dt.date]
    grid: list[tuple[str, list[str]]]  # (slot label, status per day)
    slot_codes: list[str]
    today: dt.date


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_default_timezone())


def _report_entries(*, user, student: Student, health: bool, since: dt.date) -> list[TimelineEntry]:
    if not health:
        # A class monitor sees that a classmate reported, never what they answered.
        rows = DailyReport.objects.filter(student_id=student.pk, date__gte=since).values_list(
            "date", "slot__code", "submitted_at", "late"
        )
        return [
            TimelineEntry(
                at=submitted_at,
                kind="report",
                kind_label=str(_("打卡")),
                title=f"{day:%m-%d} {slot_label(code)}" + (f" · {_('迟报')}" if late else ""),
            )
            for day, code, submitted_at, late in rows
        ]
    out = []
    for r in report_list(user=user).filter(student_id=student.pk, date__gte=since):
        details = [
            f"{_('体温')} {r.temperature} °C" if r.temperature is not None else str(_("未测体温")),
            f"{_('健康状况')}: {r.get_health_status_display()}",
            f"{_('所在地')}: {r.get_whereabouts_display()}",
        ]
        if r.flags:
            details.append(f"{_('提示')}: " + "、".join(_flag_label(f) for f in r.flags))
        if r.note:
            details.append(f"{_('备注')}: {r.note}")
        title = f"{r.date:%m-%d} {slot_label(r.slot.code)} · {r.get_source_display()}"
        if r.late:
            title += f" · {_('迟报')}"
        out.append(
            TimelineEntry(
                at=r.submitted_at,
                kind="report",
                kind_label=str(_("打卡")),
                title=title,
                details=tuple(details),
                alert=r.abnormal or r.suspected_bot,
            )
        )
    return out


def _contact_entries(*, user, student: Student, health: bool, since: dt.date) -> list[TimelineEntry]:
    if not health:
        return []
    rows = contact_list(user=user).filter(student_id=student.pk, contacted_at__gte=_day_start(since))
    return [
        TimelineEntry(
            at=c.contacted_at,
            kind="contact",
            kind_label=str(_("联系")),
            title=f"{c.get_channel_display()} · {c.get_outcome_display()}",
            details=tuple(x for x in (c.note, str(c.contacted_by or "")) if x),
        )
        for c in rows
    ]


def _excusal_entries(*, user, student: Student, health: bool, since: dt.date) -> list[TimelineEntry]:
    if not health:
        return []
    rows = excusal_list(user=user).filter(student_id=student.pk).filter(Q(ends_on__isnull=True) | Q(ends_on__gte=since))
    return [
        TimelineEntry(
            at=_day_start(e.starts_on),
            kind="excusal",
            kind_label=str(_("免报")),
            title=f"{e.get_reason_display()} {e.starts_on:%m-%d} – {e.ends_on:%m-%d}"
            if e.ends_on
            else f"{e.get_reason_display()} {e.starts_on:%m-%d} – …",
            details=tuple(x for x in (e.note,) if x),
            alert=e.reason == ExcusalReason.IN_HOSPITAL,
        )
        for e in rows
    ]


#: What the one-student page gathers, each ``(user=, student=, health=, since=)`` →
#: entries.  Later issues (cases, supplies, departure) append their own source here.
TIMELINE_SOURCES: list[Callable[..., Iterable[TimelineEntry]]] = [_report_entries, _contact_entries, _excusal_entries]


def student_page(*, user, student_id: int, weeks: int = 4) -> StudentPage | None:
    """Everything about one student the user may see (一生一档), or None if the student
    is outside their scope.  The profile is masked as the roles reaching this student
    require (:meth:`campuses.scoping.Scope.annotate_pii`); health details — reports'
    answers, tags, contacts, excusals — only for a role in HEALTH_ROLES."""
    scope = scope_for(user)
    student = (
        scope.annotate_pii(
            scope.students(
                Student.objects.select_related("school_class", "grade", "college", "campus", "building", "room")
            )
        )
        .annotate(health=scope.role_flag(HEALTH_ROLES), may_chase=scope.role_flag(CHASE_ROLES))
        .filter(pk=student_id)
        .first()
    )
    if student is None:
        return None
    now_day = today()
    since = now_day - dt.timedelta(days=7 * weeks - 1)
    health = bool(student.health)
    timeline: list[TimelineEntry] = []
    for source in TIMELINE_SOURCES:
        timeline += source(user=user, student=student, health=health, since=since)
    tags = list(student.tags.order_by("-since", "-id")) if health else []
    for tag in tags:
        timeline.append(
            TimelineEntry(
                at=_day_start(tag.since),
                kind="tag",
                kind_label=str(_("重点关注")),
                title=tag.get_tag_display(),
                details=(tag.reason,),
                alert=True,
            )
        )
    timeline = [e for e in timeline if e.at >= _day_start(since)]
    timeline.sort(key=lambda e: e.at, reverse=True)
    slot_codes = ordered_slot_codes(
        CheckinSlot.objects.filter(campus_id=student.campus_id, active=True).values_list("code", flat=True)
    )
    days = [since + dt.timedelta(days=n) for n in range((now_day - since).days + 1)]
    reported = {
        (day, code)
        for day, code in DailyReport.objects.filter(student_id=student.pk, date__gte=since).values_list(
            "date", "slot__code"
        )
    }
    excused_days = excused_days_between(student, since, now_day) if health else set()
    first_day = timezone.localtime(student.created_at).date()  # nothing was expected before
    grid = [
        (
            slot_label(code),
            [_grid_status(d, code, reported, excused_days, now_day, first_day) for d in days],
        )
        for code in slot_codes
    ]
    return StudentPage(
        student=student,
        phone=shown_phone(student, bool(student.pii_phone)),
        id_number=shown_id_number(student, bool(student.pii_id)),
        guardian_phone=student.guardian_phone if student.pii_phone else mask_phone(student.guardian_phone),
        health=health,
        may_chase=bool(student.may_chase),
        since=since,
        tags=tags,
        timeline=timeline,
        grid_days=days,
        grid=grid,
        slot_codes=slot_codes,
        today=now_day,
    )


def _grid_status(
    day: dt.date, code: str, reported: set, excused: set[dt.date], now_day: dt.date, first_day: dt.date
) -> str:
    if (day, code) in reported:
        return "reported"
    if day < first_day:
        return "none"
    if day in excused:
        return "excused"
    return "pending" if day == now_day else "missing"


def excused_days_between(student: Student, start: dt.date, end: dt.date) -> set[dt.date]:
    """The days between ``start`` and ``end`` on which ``student`` was excused (one query)."""
    days: set[dt.date] = set()
    rows = Excusal.objects.filter(student_id=student.pk, starts_on__lte=end).filter(
        Q(ends_on__isnull=True) | Q(ends_on__gte=start)
    )
    for starts_on, ends_on in rows.values_list("starts_on", "ends_on"):
        day = max(starts_on, start)
        last = min(ends_on or end, end)
        while day <= last:
            days.add(day)
            day += dt.timedelta(days=1)
    return days
