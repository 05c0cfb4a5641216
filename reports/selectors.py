"""Reads of the daily check-in, each taking the acting user so scoping cannot be forgotten.

Product rules (DESIGN.md, "Daily check-in" and "Organisation tree and scopes"): the
missing list ("who has not reported", 未报名单) is the central list counsellors work
from; a class monitor sees the names in their class and nothing about health; a
student sees only their own reports.  Visibility always comes from
:func:`campuses.scoping.scope_for`, narrowed by role where health data is involved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campuses.bulk import array_param, convert_row, in_array_sql, per_vendor, quoted_columns
from campuses.models import Assignment, Role
from campuses.scoping import HEALTH_ROLES, Scope, scope_for
from reports.models import CheckinSlot, DailyReport, Excusal
from students.models import ContactLog, EnrolmentStatus, Student

#: Who chases students: proxy reports (代报), excusals, contact-log entries, follow-ups.
CHASE_ROLES = frozenset({Role.COUNSELLOR, Role.DUTY_COUNSELLOR, Role.COLLEGE_ADMIN})
#: Who sees the missing list with names and student numbers only.
NAMES_ONLY_ROLES = frozenset({Role.CLASS_MONITOR})
#: Who is named as responsible for a student on the missing list.
RESPONSIBLE_ROLES = (Role.COUNSELLOR,)


def local_now() -> dt.datetime:
    """Now in the university's time zone (Asia/Shanghai), whatever zone is active."""
    return timezone.now().astimezone(timezone.get_default_timezone())


def students_with_role(user, *, roles: frozenset[str]) -> QuerySet[Student]:
    """The students ``user`` reaches through a grant of one of ``roles`` (never themself)."""
    return Student.objects.filter(scope_for(user).student_q(roles=roles))


def own_student(user) -> Student | None:
    """The student record of ``user`` (a student reporting for themself), if any: no
    query when the API's authentication loaded it with the user."""
    if not getattr(user, "is_authenticated", False):
        return None
    try:
        return user.student
    except ObjectDoesNotExist:
        return None


def _health_reports_q(scope: Scope) -> Q:
    """Reports a user may read: students reached through a health role, and their own."""
    q = scope.student_q(prefix="student__", roles=HEALTH_ROLES)
    if scope.student_id is not None:
        q |= Q(student_id=scope.student_id)
    return q


def report_list(*, user) -> QuerySet[DailyReport]:
    """Reports ``user`` may read: a student's own history; for staff, the reports of
    the students they reach through a role that may see health data (a class monitor
    or a logistics officer sees none but their own)."""
    scope = scope_for(user)
    return DailyReport.objects.filter(_health_reports_q(scope)).select_related("student", "slot", "school_class")


def follow_up_list(*, user) -> QuerySet[DailyReport]:
    """Open follow-ups (abnormal or suspected-bot reports) for the students ``user``
    chases; served by the partial index on open follow-ups."""
    scope = scope_for(user)
    return (
        DailyReport.objects.filter(scope.student_q(prefix="student__", roles=CHASE_ROLES), follow_up="open")
        .select_related("student", "slot", "school_class")
        .order_by("date", "school_class_id", "id")
    )


def slot_list(*, user) -> QuerySet[CheckinSlot]:
    """Active check-in slots of the campuses where ``user`` sees students (a student:
    their own campus)."""
    campus_ids = scope_for(user).students().values("campus_id")
    return CheckinSlot.objects.filter(active=True, campus_id__in=campus_ids).select_related("campus")


def excusal_list(*, user) -> QuerySet[Excusal]:
    """Excusals of the students ``user`` may read health-related data of."""
    scope = scope_for(user)
    return Excusal.objects.filter(scope.student_q(prefix="student__", roles=HEALTH_ROLES)).select_related(
        "student", "created_by"
    )


def excusals_on(day: dt.date) -> QuerySet[Excusal]:
    """Excusals in force on ``day`` (for every student; callers correlate or scope)."""
    return Excusal.objects.filter(Q(ends_on__isnull=True) | Q(ends_on__gte=day), starts_on__lte=day)


def contact_list(*, user) -> QuerySet[ContactLog]:
    """Contact-log entries of the students ``user`` may read health-related data of."""
    scope = scope_for(user)
    return ContactLog.objects.filter(scope.student_q(prefix="student__", roles=HEALTH_ROLES)).select_related(
        "student", "contacted_by"
    )


def missing_list_detailed(user) -> bool | None:
    """How ``user`` sees the missing list: True with details (a health role), False
    names only (a class monitor), None not at all."""
    scope = scope_for(user)
    if scope.has_role(*HEALTH_ROLES):
        return True
    return False if scope.has_role(*NAMES_ONLY_ROLES) else None


def report_missing(
    *, user, on: dt.date, slot_code: str, students: QuerySet[Student] | None = None
) -> tuple[QuerySet[Student], bool]:
    """Who has not reported (未报名单): the students in ``user``'s scope who are enrolled,
    whose campus has an active ``slot_code`` slot, who are not excused on ``on`` and
    have no report for (``on``, that slot) — one SQL statement with NOT EXISTS
    subqueries, whatever the unit's size.

    Returns the queryset and whether it is *detailed*: users with a health role get the
    phone-masking flags (``pii_phone``, ``pii_id``) and — for the rows they read, from
    :func:`missing_details` — the responsible counsellor and the last contact; a class
    monitor gets names and student numbers only.  Anyone else is refused.  ``students``
    narrows the result further (unit filters); it can never widen it."""
    scope = scope_for(user)
    detailed = missing_list_detailed(user)
    if detailed is None:
        raise PermissionDenied(_("只有辅导员、学院和校区的学工人员以及班长可以查看未报名单。"))
    base = Student.objects.all() if students is None else students
    slots = CheckinSlot.objects.filter(campus_id=OuterRef("campus_id"), code=slot_code, active=True)
    reports = DailyReport.objects.filter(student_id=OuterRef("pk"), date=on, slot__code=slot_code)
    excused = excusals_on(on).filter(student_id=OuterRef("pk"))
    qs = (
        base.filter(scope.student_q(roles=HEALTH_ROLES if detailed else NAMES_ONLY_ROLES))
        .filter(enrolment_status=EnrolmentStatus.ENROLLED)
        .filter(Exists(slots))
        .filter(~Exists(excused), ~Exists(reports))
        .select_related("school_class")
        .order_by("school_class_id", "student_number")
    )
    if not detailed:
        return qs.only("id", "student_number", "name", "school_class__name"), False
    return scope.annotate_pii(qs.only("id", "student_number", "name", "phone", "school_class__name")), True


def _user_name(alias: str, column: dict[str, str]) -> str:
    """SQL of a user's name as people write it (family name first), or the username
    where the account has no name; NULL where there is no user (an outer join)."""
    first, last = f"{alias}.{column['first_name']}", f"{alias}.{column['last_name']}"
    return f"CASE WHEN {first} = '' AND {last} = '' THEN {alias}.{column['username']} ELSE {last} || {first} END"


@per_vendor
def _missing_details_sql() -> str:
    """Per student of a list of ids: the responsible counsellor's name and the last
    contact (time, channel, outcome, who).  Parameters: the responsible roles, the day
    twice, the ids as one parameter (:func:`campuses.bulk.in_array_sql`), so the
    statement is the same whatever the number of rows."""
    from django.contrib.auth import get_user_model

    student_table, student = quoted_columns(Student)
    assignment_table, assignment = quoted_columns(Assignment)
    contact_table, contact = quoted_columns(ContactLog)
    user_table, user = quoted_columns(get_user_model())
    roles = ", ".join(["%s"] * len(RESPONSIBLE_ROLES))
    valid_from, valid_to = (f"a.{assignment[name]}" for name in ("valid_from", "valid_to"))
    counsellor = (
        f"SELECT {_user_name('au', user)} FROM {assignment_table} a "
        f"INNER JOIN {user_table} au ON au.{user['id']} = a.{assignment['user']} "
        f"WHERE (a.{assignment['grade']} = s.{student['grade']} "
        f"OR a.{assignment['school_class']} = s.{student['school_class']}) "
        f"AND a.{assignment['role']} IN ({roles}) "
        f"AND ({valid_from} IS NULL OR {valid_from} <= %s) AND ({valid_to} IS NULL OR {valid_to} >= %s) "
        # a counsellor of the class before one of the grade, then the earliest assignment
        f"ORDER BY CASE WHEN a.{assignment['school_class']} IS NULL THEN 1 ELSE 0 END, "
        f"a.{assignment['school_class']}, a.{assignment['id']} LIMIT 1"
    )
    last_contact = (
        f"SELECT c2.{contact['id']} FROM {contact_table} c2 WHERE c2.{contact['student']} = s.{student['id']} "
        f"ORDER BY c2.{contact['contacted_at']} DESC, c2.{contact['id']} DESC LIMIT 1"
    )
    return (
        f"SELECT d.id, d.counsellor, c.{contact['contacted_at']}, c.{contact['channel']}, c.{contact['outcome']}, "
        f"{_user_name('cu', user)} "
        f"FROM (SELECT s.{student['id']} AS id, ({counsellor}) AS counsellor, ({last_contact}) AS contact_id "
        f"FROM {student_table} s WHERE s.{student['id']} {in_array_sql()}) d "
        f"LEFT JOIN {contact_table} c ON c.{contact['id']} = d.contact_id "
        f"LEFT JOIN {user_table} cu ON cu.{user['id']} = c.{contact['contacted_by']}"
    )


def missing_details(students: Iterable[Student], *, on: dt.date) -> list[Student]:
    """Give each of ``students`` — rows of :func:`report_missing`'s detailed list, a
    page or a chunk of it — the responsible counsellor on ``on`` (``counsellor_name``:
    a counsellor assigned to the student's class before one of the grade) and the last
    contact (``last_contact_at``, ``_channel``, ``_outcome``, ``_by``; None where there
    is none), in one hand-written statement for the rows: the list's own query stays
    the one the filters, the admin and the dashboards share, and the details are read
    for the rows shown only (building and compiling them as five correlated subqueries
    of the list cost a third of a class's missing-list request).  Returns the rows."""
    rows = list(students)
    if not rows:
        return rows
    ids = [s.pk for s in rows]
    day = connection.ops.adapt_datefield_value(on)
    roles = [str(role) for role in RESPONSIBLE_ROLES]
    fields = [ContactLog._meta.get_field(name) for name in ("contacted_at", "channel", "outcome")]
    found = {}
    with connection.cursor() as cursor:
        cursor.execute(_missing_details_sql(), [*roles, day, day, array_param(ids)])
        for pk, counsellor, *contact in cursor.fetchall():
            found[pk] = (counsellor, *convert_row(ContactLog, fields, contact[:3]), contact[3])
    for s in rows:
        (
            s.counsellor_name,
            s.last_contact_at,
            s.last_contact_channel,
            s.last_contact_outcome,
            s.last_contact_by,
        ) = found.get(s.pk, (None,) * 5)
    return rows


@dataclass(frozen=True)
class SlotToday:
    """One of today's check-in slots as a student sees it."""

    slot: CheckinSlot
    date: dt.date
    state: str  # "upcoming", "open" or "closed"
    late: bool
    report_id: int | None
    excused: bool

    @property
    def done(self) -> bool:
        return self.report_id is not None


def checkin_today(*, student: Student, now: dt.datetime | None = None) -> list[SlotToday]:
    """Today's slots of ``student``'s campus, each with its state (upcoming, open,
    closed), whether the student has reported and whether they are excused."""
    now = now or local_now()
    today = now.astimezone(timezone.get_default_timezone()).date()
    slots = list(CheckinSlot.objects.filter(campus_id=student.campus_id, active=True).order_by("opens_at"))
    done = dict(
        DailyReport.objects.filter(student_id=student.pk, date=today, slot__in=slots).values_list("slot_id", "id")
    )
    excused = excusals_on(today).filter(student_id=student.pk).exists()
    result = []
    for slot in slots:
        result.append(
            SlotToday(
                slot=slot,
                date=today,
                state=slot.state(today, now),
                late=slot.is_late(today, now),
                report_id=done.get(slot.pk),
                excused=excused,
            )
        )
    return result
