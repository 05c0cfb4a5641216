"""Reads of the daily check-in, each taking the acting user so scoping cannot be forgotten.

Product rules (DESIGN.md, "Daily check-in" and "Organisation tree and scopes"): the
missing list ("who has not reported", 未报名单) is the central list counsellors work
from; a class monitor sees the names in their class and nothing about health; a
student sees only their own reports.  Visibility always comes from
:func:`campuses.scoping.scope_for`, narrowed by role where health data is involved.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, Subquery, When
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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


def _display_name(prefix: str = "") -> Case:
    """A user's name as people write it (family name first), or the username."""
    return Case(
        When(Q(**{f"{prefix}first_name": ""}) & Q(**{f"{prefix}last_name": ""}), then=F(f"{prefix}username")),
        default=Concat(F(f"{prefix}last_name"), F(f"{prefix}first_name")),
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
    responsible counsellor (a counsellor assigned to the student's grade or class on
    ``on``), the last contact and the phone-masking flags; a class monitor gets names
    and student numbers only.  Anyone else is refused.  ``students`` narrows the
    result further (unit filters); it can never widen it."""
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

    counsellors = (
        Assignment.objects.filter(Q(grade_id=OuterRef("grade_id")) | Q(school_class_id=OuterRef("school_class_id")))
        .filter(role__in=RESPONSIBLE_ROLES)
        .filter(Q(valid_from__isnull=True) | Q(valid_from__lte=on), Q(valid_to__isnull=True) | Q(valid_to__gte=on))
        .annotate(display=_display_name("user__"))
        .order_by(F("school_class_id").asc(nulls_last=True), "id")
    )
    contacts = ContactLog.objects.filter(student_id=OuterRef("pk")).order_by("-contacted_at", "-id")
    qs = scope.annotate_pii(qs.only("id", "student_number", "name", "phone", "school_class__name")).annotate(
        counsellor_name=Subquery(counsellors.values("display")[:1]),
        last_contact_at=Subquery(contacts.values("contacted_at")[:1]),
        last_contact_channel=Subquery(contacts.values("channel")[:1]),
        last_contact_outcome=Subquery(contacts.values("outcome")[:1]),
        last_contact_by=Subquery(contacts.annotate(display=_display_name("contacted_by__")).values("display")[:1]),
    )
    return qs, True


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
