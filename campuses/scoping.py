"""The one scoping function: which units and students a user may see.

Product rule (DESIGN.md, "Organisation tree and scopes"): an assignment at a unit
grants that unit and everything below it; a student sees only themself; a superuser
sees everything.  Every admin list, API endpoint, dashboard, export and reminder
recipient list asks :func:`scope_for` and filters through the :class:`Scope` it
returns — nothing else in the code base decides visibility.

How it stays one indexed query however deep the unit: students carry their campus,
college, grade, class, building and room ids (denormalised), so "students under
these units" is ``campus_id IN (..) OR college_id IN (..) OR ...`` on indexed
columns.  Units are filtered the same way through their ancestor columns.  The
user's active assignments are read once per request and cached on the user object.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection, models
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet, Value
from django.utils import timezone

from campuses.bulk import array_param, in_array_sql, per_vendor, quoted_columns
from campuses.models import (
    UNIT_FIELDS,
    Assignment,
    Building,
    Campus,
    College,
    Grade,
    Role,
    Room,
    SchoolClass,
    University,
)

#: Roles that need a student's phone number in full (they call students).
FULL_PHONE_ROLES = frozenset(
    {Role.UNIVERSITY_ADMIN, Role.COLLEGE_ADMIN, Role.COUNSELLOR, Role.DUTY_COUNSELLOR, Role.PSYCHOLOGICAL_COUNSELLOR}
)
#: Roles that need the ID-card number in full (official registers).
FULL_ID_ROLES = frozenset({Role.UNIVERSITY_ADMIN, Role.COLLEGE_ADMIN})
#: Roles that may see health details of reports (a class monitor sees names only).
HEALTH_ROLES = frozenset(set(Role.values) - {Role.CLASS_MONITOR, Role.LOGISTICS_OFFICER})

# For each scoped model: the lookup from that model to each unit level above or at it.
_UNIVERSITY_VIA_CAMPUS = "campus__university_id"
_PATHS: dict[type[models.Model], dict[str, str]] = {
    University: {"university": "id"},
    Campus: {"university": "university_id", "campus": "id"},
    College: {"university": _UNIVERSITY_VIA_CAMPUS, "campus": "campus_id", "college": "id"},
    Grade: {
        "university": "college__campus__university_id",
        "campus": "college__campus_id",
        "college": "college_id",
        "grade": "id",
    },
    SchoolClass: {
        "university": "grade__college__campus__university_id",
        "campus": "grade__college__campus_id",
        "college": "grade__college_id",
        "grade": "grade_id",
        "school_class": "id",
    },
    Building: {"university": _UNIVERSITY_VIA_CAMPUS, "campus": "campus_id", "building": "id"},
    Room: {
        "university": "building__campus__university_id",
        "campus": "building__campus_id",
        "building": "building_id",
        "room": "id",
    },
}
# Students: every level is a denormalised, indexed column.
STUDENT_PATHS: dict[str, str] = {
    "university": _UNIVERSITY_VIA_CAMPUS,
    "campus": "campus_id",
    "college": "college_id",
    "grade": "grade_id",
    "school_class": "school_class_id",
    "building": "building_id",
    "room": "room_id",
}


@dataclass(frozen=True)
class Grant:
    """One active assignment reduced to what scoping needs."""

    role: str
    level: str
    unit_id: int


@dataclass(frozen=True)
class Scope:
    """What one user may see on one day.  Build it with :func:`scope_for`."""

    user_id: int | None
    everything: bool = False
    student_id: int | None = None
    grants: tuple[Grant, ...] = field(default_factory=tuple)

    # -- who is this -------------------------------------------------------
    def has_role(self, *roles: str) -> bool:
        return self.everything or any(g.role in roles for g in self.grants)

    def fingerprint(self) -> str:
        """What this scope lets its user see, as a short string: two users with the same
        fingerprint see the same students and the same details of them (the grants,
        everything, their own student record; not who they are).  For caches shared
        between such users (:mod:`reports.live_lists`)."""
        grants = sorted((g.role, g.level, g.unit_id) for g in self.grants)
        text = repr((self.everything, self.student_id, grants))
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()

    def narrowed(self, roles: Iterable[str]) -> Scope:
        """The part of this scope granted through ``roles`` — what the user reaches as,
        say, a counsellor — without a student's access to themself.  Everything stays
        everything."""
        if self.everything:
            return self
        wanted = set(roles)
        return Scope(user_id=self.user_id, grants=tuple(g for g in self.grants if g.role in wanted))

    # -- building blocks ---------------------------------------------------
    def _granted(self, paths: dict[str, str], roles: Iterable[str] | None) -> dict[str, list[int]]:
        """The granted units by level (in ``UNIT_FIELDS`` order), of the grants through
        ``roles`` (all for None) at the levels ``paths`` reaches."""
        wanted = None if roles is None else set(roles)
        by_level: dict[str, set[int]] = {}
        for grant in self.grants:
            if wanted is not None and grant.role not in wanted:
                continue
            if grant.level in paths:
                by_level.setdefault(grant.level, set()).add(grant.unit_id)
        return {level: sorted(by_level[level]) for level in UNIT_FIELDS if level in by_level}

    def _grant_q(self, paths: dict[str, str], prefix: str, roles: Iterable[str] | None) -> Q:
        q = Q(pk__in=[])  # matches nothing: no grant, no rows
        for level, ids in self._granted(paths, roles).items():
            q |= Q(**{f"{prefix}{paths[level]}__in": ids})
        return q

    def student_q(self, *, prefix: str = "", roles: Iterable[str] | None = None) -> Q:
        """A Q selecting the students this user may see.  ``prefix`` reaches a student
        from another model (``"student__"`` on a report); ``roles`` narrows the grants
        considered (e.g. only those that allow full phone numbers)."""
        if self.everything:
            return Q()
        q = self._grant_q(STUDENT_PATHS, prefix, roles)
        if self.student_id is not None and roles is None:
            q |= Q(**{f"{prefix}pk" if not prefix else f"{prefix}id": self.student_id})
        return q

    def student_sql(self, alias: str, *, roles: Iterable[str] | None = None, name: str = "scope") -> tuple[str, dict]:
        """:meth:`student_q` as SQL for a hand-written statement: a condition on the
        students' table under ``alias``, and its named parameters (``name``-prefixed,
        one array per level, so the statement's text is the same whatever the number
        of units).  The same grants, read the same way, as the Q."""
        if self.everything:
            return "1 = 1", {}
        column, campus_table, campus = _student_sql_columns()
        terms, params = [], {}
        for level, ids in self._granted(STUDENT_PATHS, roles).items():
            key = f"{name}_{level}"
            test = in_array_sql(f"%({key})s")
            if level == "university":  # reached through the student's campus
                of_university = f"SELECT {campus['id']} FROM {campus_table} WHERE {campus['university']} {test}"
                terms.append(f"{alias}.{column['campus']} IN ({of_university})")
            else:
                terms.append(f"{alias}.{column[level]} {test}")
            params[key] = array_param(ids)
        if self.student_id is not None and roles is None:
            terms.append(f"{alias}.{column['id']} = %({name}_self)s")
            params[f"{name}_self"] = self.student_id
        return (f"({' OR '.join(terms)})" if terms else "1 = 0"), params

    def reaches_all_of(self, units: Iterable[tuple[str, int]], *, roles: Iterable[str]) -> bool:
        """Does this scope reach every student under a unit through one of ``roles`` —
        a grant at one of ``units``, given as (level, id) of the unit and its ancestors?"""
        if self.everything:
            return True
        wanted, chain = set(roles), set(units)
        return any(g.role in wanted and (g.level, g.unit_id) in chain for g in self.grants)

    # -- the public filters ------------------------------------------------
    def students(self, queryset: QuerySet | None = None) -> QuerySet:
        """The students this user may see (a student: only themself)."""
        qs = _student_model().objects.all() if queryset is None else queryset
        return qs.filter(self.student_q())

    def units(self, model: type[models.Model], queryset: QuerySet | None = None) -> QuerySet:
        """The units of ``model`` (Campus, College, ..., Room) this user may see: the
        subtree under each of their assignments."""
        qs = model._default_manager.all() if queryset is None else queryset
        if self.everything:
            return qs
        return qs.filter(self._grant_q(_PATHS[model], "", None))

    def assignable_rooms(self, queryset: QuerySet | None = None) -> QuerySet:
        """Rooms this user may put a student into: the rooms they see, plus every room on
        a campus where they hold a teaching-tree duty (a college admin places its
        students in the campus's dorms without seeing who else lives there)."""
        qs = Room.objects.all() if queryset is None else queryset
        if self.everything:
            return qs
        campus_ids = set(self.units(Campus).values_list("id", flat=True))
        campus_ids |= set(self.units(College).values_list("campus_id", flat=True))
        campus_ids |= set(self.units(Grade).values_list("college__campus_id", flat=True))
        campus_ids |= set(self.units(SchoolClass).values_list("grade__college__campus_id", flat=True))
        return qs.filter(self._grant_q(_PATHS[Room], "", None) | Q(building__campus_id__in=campus_ids))

    # -- personal data -----------------------------------------------------
    def role_flag(self, roles: Iterable[str], *, prefix: str = "") -> ExpressionWrapper | Value:
        """Per student row: does this user reach the student through one of ``roles``?"""
        roles = frozenset(roles)
        if self.everything:
            return Value(True, output_field=BooleanField())
        if not any(g.role in roles for g in self.grants):
            return Value(False, output_field=BooleanField())
        return ExpressionWrapper(self.student_q(prefix=prefix, roles=roles), output_field=BooleanField())

    def annotate_pii(self, queryset: QuerySet, *, prefix: str = "") -> QuerySet:
        """Add ``pii_phone`` and ``pii_id`` booleans: may this user see that student's
        phone / ID number in full?  Decided per student, by the roles that reach him."""
        return queryset.annotate(
            pii_phone=self.role_flag(FULL_PHONE_ROLES, prefix=prefix),
            pii_id=self.role_flag(FULL_ID_ROLES, prefix=prefix),
        )


def _student_model() -> type[models.Model]:
    from students.models import Student  # students depends on campuses, not the reverse

    return Student


@per_vendor
def _student_sql_columns() -> tuple[dict[str, str], str, dict[str, str]]:
    """The quoted columns :meth:`Scope.student_sql` writes: the student's, the campus
    table and its columns."""
    return (quoted_columns(_student_model())[1], *quoted_columns(Campus))


def _today() -> dt.date:
    return timezone.localdate()


def scope_for(user, *, on: dt.date | None = None) -> Scope:
    """Return the :class:`Scope` of ``user`` on day ``on`` (today in Asia/Shanghai by
    default).  Superusers and university admins see everything; other staff see the
    subtrees of their assignments valid that day; a student sees their own record;
    anyone else sees nothing.  The result is cached on the user object."""
    day = on or _today()
    cached = getattr(user, "_tongxin_scope", None)
    if cached is not None and cached[0] == day:
        return cached[1]
    scope = _build_scope(user, day)
    if user is not None and getattr(user, "pk", None) is not None:
        user._tongxin_scope = (day, scope)
    return scope


@per_vendor
def _assignments_sql() -> str:
    table, column = quoted_columns(Assignment)
    valid_from, valid_to = column["valid_from"], column["valid_to"]
    return (
        f"SELECT {column['role']}, {', '.join(column[name] for name in UNIT_FIELDS)} "
        f"FROM {table} WHERE {column['user']} = %s "
        f"AND ({valid_from} IS NULL OR {valid_from} <= %s) AND ({valid_to} IS NULL OR {valid_to} >= %s) "
        f"ORDER BY {column['role']}, {column[Assignment._meta.pk.name]}"
    )


def _assignment_rows(user_id: int, day: dt.date) -> list[tuple]:
    """(role, *unit ids in ``UNIT_FIELDS`` order) of the user's assignments valid on
    ``day``, in role order.  Every request of a signed-in user asks this once: as raw
    SQL it costs its round trip, where the ORM's compilation of the same lookup cost
    seven times that (0.71 against 0.09 ms a request at 100,000 students)."""
    value = connection.ops.adapt_datefield_value(day)
    with connection.cursor() as cursor:
        cursor.execute(_assignments_sql(), [user_id, value, value])
        return cursor.fetchall()


def _build_scope(user, day: dt.date) -> Scope:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return Scope(user_id=None)
    if user.is_superuser:
        return Scope(user_id=user.pk, everything=True)
    grants = []
    for role, *unit_ids in _assignment_rows(user.pk, day):
        for level, unit_id in zip(UNIT_FIELDS, unit_ids, strict=True):
            if unit_id is not None:
                grants.append(Grant(role=role, level=level, unit_id=unit_id))
    from students.models import Student

    try:
        student_id = user.student.pk  # loaded with the user by config.authentication, or read now
    except Student.DoesNotExist:
        student_id = None
    return Scope(user_id=user.pk, student_id=student_id, grants=tuple(grants))
