"""The reminder ladder (催报): which step is due, and who it reaches.

Product rule (DESIGN.md, "Reminders and the nightly roll-up"; issue 4): at slot open
every expected student; before the due time those still missing; at the due time
each counsellor gets their missing list; later the college admin gets what is still
missing; the class monitor can be a step.  Nobody is reminded twice for the same
slot and step, even if the dispatch runs twice or two beats run: the step's
:class:`~reports.reminder_models.ReminderRun` for the day is claimed in the same
transaction that writes the notifications (whose dedupe keys are unique as well), so
a crash leaves nothing and the next tick redoes it, and a second dispatcher finds the
claim.  Messages carry counts and a link, never health details.

Staff recipients' lists go through :func:`campuses.scoping.scope_for` one person at a
time (a few hundred counsellors); students are selected set-based.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from campuses.models import Assignment, Role
from campuses.scoping import scope_for
from notifications.channels import GroupDigest
from notifications.selectors import group_robots_for
from notifications.services import group_digest_send, notify
from reports.models import CheckinSlot, DailyReport
from reports.reminder_models import Anchor, ReminderRun, ReminderStep, StepKind
from reports.selectors import excusals_on
from students.models import EnrolmentStatus, Student

logger = logging.getLogger(__name__)

#: The roles that receive each staff step, and the unit field their duty sits on.
STAFF_STEPS = {
    StepKind.COUNSELLORS: (Role.COUNSELLOR, Role.DUTY_COUNSELLOR),
    StepKind.COLLEGE_ADMINS: (Role.COLLEGE_ADMIN,),
    StepKind.MONITORS: (Role.CLASS_MONITOR,),
}
STUDENT_STEPS = frozenset({StepKind.STUDENTS_ALL, StepKind.STUDENTS_MISSING})


def expected_students(*, slot: CheckinSlot, on: dt.date, missing_only: bool) -> QuerySet[Student]:
    """Enrolled students of the slot's campus who are not excused on ``on``; with
    ``missing_only``, only those without a report for (``on``, ``slot``)."""
    excused = excusals_on(on).filter(student_id=OuterRef("pk"))
    qs = Student.objects.filter(campus_id=slot.campus_id, enrolment_status=EnrolmentStatus.ENROLLED).filter(
        ~Exists(excused)
    )
    if missing_only:
        qs = qs.filter(~Exists(DailyReport.objects.filter(student_id=OuterRef("pk"), date=on, slot_id=slot.pk)))
    return qs


def fire_time(step: ReminderStep, on: dt.date) -> dt.datetime:
    """When ``step`` fires on local date ``on`` (aware, Asia/Shanghai)."""
    base = step.slot.opens_at if step.anchor == Anchor.OPENS else step.slot.due_at
    local = dt.datetime.combine(on, base) + dt.timedelta(minutes=step.offset_minutes)
    return timezone.make_aware(local, timezone.get_default_timezone())


def reminders_dispatch(*, now: dt.datetime | None = None, steps: list[ReminderStep] | None = None) -> list[ReminderRun]:
    """Carry out every reminder step whose time has come today and that has not run
    yet.  Safe to call every minute, twice at once, or after an outage: a step that
    was missed while the broker was down runs at the next call (student steps only
    while their slot is still open).  ``steps``: only these of the due steps (from
    :func:`due_steps`)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    runs = []
    for step in due_steps(now=now) if steps is None else steps:
        run = reminder_step_run(step=step, on=today, now=now)
        if run is not None:
            runs.append(run)
    return runs


def due_steps(*, now: dt.datetime, step_ids: list[int] | None = None) -> list[ReminderStep]:
    """The active steps (of ``step_ids``, if given) whose time has come on the local
    day of ``now`` and that have not run that day, with their slot and campus."""
    today = timezone.localdate(now)
    steps = ReminderStep.objects.filter(active=True, slot__active=True).select_related("slot", "slot__campus")
    if step_ids is not None:
        steps = steps.filter(pk__in=step_ids)
    done = set(ReminderRun.objects.filter(date=today).values_list("step_id", flat=True))
    return [step for step in steps if step.pk not in done and fire_time(step, today) <= now]


def reminder_step_run(*, step: ReminderStep, on: dt.date, now: dt.datetime) -> ReminderRun | None:
    """Claim ``step`` for ``on`` and send it, in one transaction.  Returns None when
    another dispatcher holds the claim already."""
    try:
        with transaction.atomic():
            run = ReminderRun.objects.create(step=step, date=on, claimed_at=now)
            closes = timezone.make_aware(dt.datetime.combine(on, step.slot.closes_at), timezone.get_default_timezone())
            if step.kind in STUDENT_STEPS and now >= closes:
                run.skipped_reason = _("时段已关闭")
            elif step.kind in STUDENT_STEPS:
                run.recipients = _remind_students(step=step, on=on)
            else:
                run.recipients = _remind_staff(step=step, on=on)
            run.finished_at = timezone.now()
            run.save()
            return run
    except IntegrityError:
        logger.info("reminder step %s for %s already claimed", step.pk, on)
        return None


def _channels(step: ReminderStep) -> tuple[str, ...]:
    """The step's personal channels; anything else (a robot) is ignored, not sent."""
    from notifications.services import PERSONAL_CHANNELS

    return tuple(c for c in (step.channels or ["inapp"]) if c in PERSONAL_CHANNELS) or ("inapp",)


def _key(step: ReminderStep, on: dt.date) -> str:
    return f"remind:{on.isoformat()}:{step.slot_id}:{step.kind}:{step.anchor}:{step.offset_minutes}"


def _remind_students(*, step: ReminderStep, on: dt.date) -> int:
    students = expected_students(slot=step.slot, on=on, missing_only=step.kind == StepKind.STUDENTS_MISSING)
    user_ids = students.filter(user__isnull=False, user__is_active=True).values_list("user_id", flat=True)
    slot_name = step.slot.get_code_display()
    title = (
        _("%(slot)s已开始，请按时完成打卡") % {"slot": slot_name}
        if step.kind == StepKind.STUDENTS_ALL
        else _("您今天的%(slot)s还未完成，截止时间 %(due)s")
        % {"slot": slot_name, "due": step.slot.due_at.strftime("%H:%M")}
    )
    # Written set-based (INSERT … SELECT from the query): a step reaches a whole campus.
    return notify(
        recipients=user_ids,
        kind="reminder",
        title=title,
        body=title,
        link="/api/v1/checkin/today/",
        dedupe_key=_key(step, on),
        channels=_channels(step),
    )


def _remind_staff(*, step: ReminderStep, on: dt.date) -> int:
    roles = STAFF_STEPS[step.kind]
    holders = (
        Assignment.objects.filter(role__in=roles, user__is_active=True)
        .filter(Q(valid_from__isnull=True) | Q(valid_from__lte=on), Q(valid_to__isnull=True) | Q(valid_to__gte=on))
        .values_list("user_id", flat=True)
        .distinct()
    )
    missing = expected_students(slot=step.slot, on=on, missing_only=True)
    slot_name = step.slot.get_code_display()
    sent = 0
    from django.contrib.auth import get_user_model

    for user in get_user_model().objects.filter(pk__in=holders).order_by("pk"):
        scope = scope_for(user, on=on)
        count = missing.filter(scope.student_q(roles=roles)).count()
        if not count:
            continue
        title = _("%(date)s %(slot)s：您负责的学生中还有 %(n)d 人未完成") % {
            "date": on.isoformat(),
            "slot": slot_name,
            "n": count,
        }
        notify(
            recipients=[user.pk],
            kind="missing_list",
            title=title,
            body=title,
            link=f"/api/v1/reports/missing/?date={on.isoformat()}&slot={step.slot.code}",
            dedupe_key=_key(step, on),
            channels=_channels(step),
        )
        sent += 1
    if step.kind == StepKind.COLLEGE_ADMINS:
        _digest_to_college_robots(step=step, on=on, missing=missing)
    return sent


def _digest_to_college_robots(*, step: ReminderStep, on: dt.date, missing: QuerySet[Student]) -> None:
    """Each college's own group robot (WeCom / DingTalk) gets the count still missing per
    class: counts and a link, never a name (the digest refuses anything else)."""
    per_class: dict[int, dict[str, int]] = {}
    rows = missing.values("college_id", "school_class__name").annotate(n=Count("id")).order_by("school_class__name")
    for row in rows:
        per_class.setdefault(row["college_id"], {})[row["school_class__name"]] = row["n"]
    for college_id, counts in per_class.items():
        robots = group_robots_for(college_id=college_id).filter(college_id=college_id)
        for robot in robots:
            digest = GroupDigest(
                title=_("%(date)s %(slot)s 未报人数") % {"date": on.isoformat(), "slot": step.slot.get_code_display()},
                counts={str(_("合计")): sum(counts.values()), **dict(list(counts.items())[:19])},
                link=f"/dashboard/?date={on.isoformat()}&unit=college:{college_id}",
            )
            group_digest_send(robot=robot, digest=digest, dedupe_key=f"{_key(step, on)}:robot:{robot.pk}")
