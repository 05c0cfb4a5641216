"""Cluster alerts (聚集性预警): detection, acknowledgement, closing and the scoped reads.

Product rule (issue 5, "Cluster alerts"): several abnormal reports in the same dorm
room, building or class within a window (``TONGXIN["CLUSTER_MIN_CASES"]`` distinct
students within ``TONGXIN["CLUSTER_WINDOW_HOURS"]`` hours, per level enabled by
``TONGXIN["CLUSTER_LEVELS"]``) raise an alert for the campus coordinator and the
admins of the colleges concerned, with the students involved.  It is acknowledged
and closed with a note, and never raised twice for the same cluster:

- one active (open or acknowledged) alert per (level, unit), guarded by a partial
  unique constraint, so concurrent detections cannot both insert;
- new abnormal students of a unit with an active alert join that alert (recorded in
  its history and announced again), they never make a second alert;
- after an alert is closed, only reports submitted after the close count towards a
  new alert of that unit.

Detection is set-based: per level one GROUP BY over the window's abnormal reports
(reports carry class copies; room and building come from the student) and one read
of the students of the clusters found — never a query per student.

Who sees an alert: anyone who, through a role that handles alerts
(:data:`ALERT_ROLES`), sees one of the students involved (:func:`scope_for`).
Notifications carry counts and a link only — no names, no health details.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campuses.models import Assignment, Building, Role, Room, SchoolClass
from campuses.scoping import Scope, scope_for
from reports.alert_models import ACTIVE_STATES, AlertState, ClusterAlert, ClusterAlertStudent, ClusterLevel
from reports.models import DailyReport

logger = logging.getLogger("tongxin.alerts")

#: Roles that see, acknowledge and close cluster alerts (the people who act on an
#: outbreak); a class monitor, a logistics officer or the psychological centre do not.
ALERT_ROLES = frozenset(
    {Role.UNIVERSITY_ADMIN, Role.CAMPUS_COORDINATOR, Role.COLLEGE_ADMIN, Role.COUNSELLOR, Role.DUTY_COUNSELLOR}
)
#: Roles notified of a new or growing alert (on the alert's campus / colleges).
NOTIFIED_ROLES = (Role.CAMPUS_COORDINATOR, Role.COLLEGE_ADMIN)

#: How each level's unit is reached from a report.
_UNIT_COLUMN = {
    ClusterLevel.ROOM: "student__room_id",
    ClusterLevel.BUILDING: "student__building_id",
    ClusterLevel.SCHOOL_CLASS: "school_class_id",
}


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ClusterSettings:
    """The deployment's thresholds: distinct students per level within ``window``."""

    min_cases: dict[str, int]
    window: dt.timedelta
    levels: tuple[str, ...]


def cluster_settings() -> ClusterSettings:
    """Read ``TONGXIN["CLUSTER_MIN_CASES"]`` (an int, or a dict per level; default 3),
    ``["CLUSTER_WINDOW_HOURS"]`` (default 48) and ``["CLUSTER_LEVELS"]`` (the enabled
    levels; default room, building and class)."""
    conf = getattr(settings, "TONGXIN", {})
    raw = conf.get("CLUSTER_MIN_CASES", 3)
    default = 3 if isinstance(raw, dict) else int(raw)
    per_level = raw if isinstance(raw, dict) else {}
    min_cases = {level: max(2, int(per_level.get(level, default))) for level in ClusterLevel.values}
    levels = tuple(level for level in conf.get("CLUSTER_LEVELS", ClusterLevel.values) if level in ClusterLevel.values)
    hours = int(conf.get("CLUSTER_WINDOW_HOURS", 48))
    return ClusterSettings(min_cases=min_cases, window=dt.timedelta(hours=max(1, hours)), levels=levels)


# ---------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------
def alert_visible_q(scope: Scope) -> Q:
    """Alerts involving a student ``scope`` reaches through one of :data:`ALERT_ROLES`."""
    if scope.everything:
        return Q()
    members = ClusterAlertStudent.objects.filter(
        scope.student_q(prefix="student__", roles=ALERT_ROLES), alert_id=OuterRef("pk")
    )
    return Q(Exists(members))


def alert_list(*, user) -> QuerySet[ClusterAlert]:
    """Every cluster alert ``user`` may see: those involving a student they reach
    through one of :data:`ALERT_ROLES` (a superuser sees all)."""
    return ClusterAlert.objects.filter(alert_visible_q(scope_for(user)))


def alerts_open(*, user) -> QuerySet[ClusterAlert]:
    """The open and acknowledged alerts ``user`` may see, the most recently seen first
    (for the dashboards).  One query."""
    return (
        alert_list(user=user)
        .filter(state__in=ACTIVE_STATES)
        .select_related("campus", "college")
        .order_by("-last_seen", "-id")
    )


def alert_members(*, user, alert_id: int) -> QuerySet[ClusterAlertStudent]:
    """The students of an alert that ``user`` reaches through :data:`ALERT_ROLES`, with
    their class and dorm (names only: no phone, no ID number, no health detail).  A
    building's alert may involve students of another college: those stay hidden."""
    scope = scope_for(user)
    return (
        ClusterAlertStudent.objects.filter(alert_id=alert_id)
        .filter(Q() if scope.everything else scope.student_q(prefix="student__", roles=ALERT_ROLES))
        .select_related("student__school_class", "student__college", "student__building", "student__room")
        .order_by("first_report_at", "student__student_number")
    )


# ---------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------
@dataclass
class _Member:
    student_id: int
    college_id: int
    first: dt.datetime
    last: dt.datetime


@dataclass
class DetectResult:
    """What one detection run did: alerts raised, alerts that gained students, and
    active alerts still seen."""

    raised: list[ClusterAlert] = field(default_factory=list)
    grown: list[ClusterAlert] = field(default_factory=list)
    seen: int = 0


def _abnormal_in_window(level: str, start: dt.datetime, now: dt.datetime) -> QuerySet[DailyReport]:
    """Abnormal reports submitted in [start, now] whose unit at ``level`` is known,
    minus those submitted before the last close of an alert of the same unit."""
    column = _UNIT_COLUMN[level]
    last_closed = (
        ClusterAlert.objects.filter(level=level, unit_id=OuterRef(column), state=AlertState.CLOSED)
        .order_by("-closed_at")
        .values("closed_at")[:1]
    )
    tz = timezone.get_default_timezone()
    return (
        DailyReport.objects.filter(
            abnormal=True,
            # The date bounds let the (date, slot, unit) indexes do the work.
            date__gte=start.astimezone(tz).date(),
            date__lte=now.astimezone(tz).date(),
            submitted_at__gte=start,
            submitted_at__lte=now,
            **{f"{column}__isnull": False},
        )
        # Only cases after the unit's last closed alert (none closed: the whole window).
        .filter(submitted_at__gt=Coalesce(Subquery(last_closed), Value(start - dt.timedelta(microseconds=1))))
        .annotate(unit=F(column))
        .order_by()
    )


def _candidates(level: str, start: dt.datetime, now: dt.datetime, min_cases: int) -> dict[int, int]:
    """Units of ``level`` with at least ``min_cases`` distinct abnormal students in the
    window: one GROUP BY … HAVING."""
    rows = (
        _abnormal_in_window(level, start, now)
        .values("unit")
        .annotate(n=Count("student_id", distinct=True))
        .filter(n__gte=min_cases)
        .values_list("unit", "n")
    )
    return dict(rows)


def _members(level: str, start: dt.datetime, now: dt.datetime, unit_ids: list[int]) -> dict[int, list[_Member]]:
    """The distinct abnormal students of each of ``unit_ids`` in the window: one query."""
    rows = (
        _abnormal_in_window(level, start, now)
        .filter(**{f"{_UNIT_COLUMN[level]}__in": unit_ids})
        .values("unit", "student_id", "student__college_id")
        .annotate(first=Min("submitted_at"), last=Max("submitted_at"))
        .values_list("unit", "student_id", "student__college_id", "first", "last")
    )
    found: dict[int, list[_Member]] = defaultdict(list)
    for unit, student_id, college_id, first, last in rows:
        found[unit].append(_Member(student_id, college_id, first, last))
    return found


def _unit_info(level: str, unit_ids: list[int]) -> dict[int, tuple[str, int, int | None]]:
    """(name, campus id, college id or None) of each unit: one query."""
    if level == ClusterLevel.ROOM:
        rows = Room.objects.filter(pk__in=unit_ids).values_list("id", "building__name", "number", "building__campus_id")
        return {pk: (f"{building} {number}", campus, None) for pk, building, number, campus in rows}
    if level == ClusterLevel.BUILDING:
        rows = Building.objects.filter(pk__in=unit_ids).values_list("id", "name", "campus_id")
        return {pk: (name, campus, None) for pk, name, campus in rows}
    rows = SchoolClass.objects.filter(pk__in=unit_ids).values_list(
        "id", "name", "grade__college_id", "grade__college__campus_id"
    )
    return {pk: (name, campus, college) for pk, name, college, campus in rows}


def cluster_detect(*, now: dt.datetime | None = None) -> DetectResult:
    """Look for clusters in the window ending at ``now`` and raise or grow alerts.

    For each enabled level: one GROUP BY finds the units over the threshold; one query
    reads the distinct abnormal students of those units and of the units that already
    have an active alert.  A unit over the threshold without an active alert gets a
    new alert (its insert is guarded by the partial unique constraint: a concurrent
    detection that inserted first wins and this one joins its alert).  Students not
    yet in an active alert are added to it.  Each alert is written in its own
    transaction together with its notifications (the outbox).  Safe to run twice."""
    now = now or timezone.now()
    conf = cluster_settings()
    start = now - conf.window
    result = DetectResult()
    active = {
        (a.level, a.unit_id): a
        for a in ClusterAlert.objects.filter(state__in=ACTIVE_STATES, level__in=conf.levels).only(
            "id", "level", "unit_id", "state"
        )
    }
    known: dict[int, set[int]] = defaultdict(set)
    for alert_id, student_id in ClusterAlertStudent.objects.filter(
        alert_id__in=[a.pk for a in active.values()]
    ).values_list("alert_id", "student_id"):
        known[alert_id].add(student_id)

    for level in conf.levels:
        candidates = _candidates(level, start, now, conf.min_cases[level])
        active_units = {unit_id for (lvl, unit_id) in active if lvl == level}
        wanted = sorted(set(candidates) | active_units)
        if not wanted:
            continue
        members = _members(level, start, now, wanted)
        new_units = sorted(u for u in candidates if u not in active_units)
        info = _unit_info(level, new_units) if new_units else {}
        still_seen: list[int] = []
        for unit_id in wanted:
            found = members.get(unit_id, [])
            alert = active.get((level, unit_id))
            if alert is None:
                if unit_id not in info or len(found) < conf.min_cases[level]:
                    continue
                raised = _raise(level, unit_id, info[unit_id], found, now, conf)
                if raised is not None:
                    result.raised.append(raised)
                continue
            if any(m.student_id not in known[alert.pk] for m in found):
                grown = _join(alert.pk, found, now)
                if grown is not None:
                    result.grown.append(grown)
            elif unit_id in candidates:
                still_seen.append(alert.pk)
        if still_seen:
            result.seen += ClusterAlert.objects.filter(pk__in=still_seen).update(last_seen=now)
    if result.raised or result.grown:
        logger.info("cluster detection: %d raised, %d grown", len(result.raised), len(result.grown))
    return result


def _raise(
    level: str,
    unit_id: int,
    info: tuple[str, int, int | None],
    found: list[_Member],
    now: dt.datetime,
    conf: ClusterSettings,
) -> ClusterAlert | None:
    """Insert the alert of a new cluster with its students and notify; if another
    detection inserted it first, join that one instead."""
    name, campus_id, college_id = info
    colleges = {m.college_id for m in found}
    if college_id is None and len(colleges) == 1:
        college_id = next(iter(colleges))
    alert = ClusterAlert(
        level=level,
        unit_id=unit_id,
        unit_name=name[:200],
        campus_id=campus_id,
        college_id=college_id,
        case_count=len(found),
        min_cases=conf.min_cases[level],
        window_hours=int(conf.window.total_seconds() // 3600),
        window_start=min(m.first for m in found),
        window_end=max(m.last for m in found),
        first_seen=now,
        last_seen=now,
    )
    alert._change_reason = gettext("发现聚集性异常")
    try:
        with transaction.atomic():
            alert.save()
            ClusterAlertStudent.objects.bulk_create(
                [
                    ClusterAlertStudent(alert=alert, student_id=m.student_id, first_report_at=m.first, added_at=now)
                    for m in found
                ]
            )
            _notify(alert, raised=True)
    except IntegrityError:
        # A concurrent detection raised this cluster first: its alert is the one.
        existing = (
            ClusterAlert.objects.filter(level=level, unit_id=unit_id, state__in=ACTIVE_STATES)
            .values_list("id", flat=True)
            .first()
        )
        if existing is not None:
            _join(existing, found, now)
        return None
    return alert


def _join(alert_id: int, found: list[_Member], now: dt.datetime) -> ClusterAlert | None:
    """Add the students of ``found`` not yet in the alert; record and announce the
    growth.  Returns the alert if it grew."""
    with transaction.atomic():
        alert = ClusterAlert.objects.select_for_update().filter(pk=alert_id, state__in=ACTIVE_STATES).first()
        if alert is None:
            return None
        present = set(alert.members.values_list("student_id", flat=True))
        new = [m for m in found if m.student_id not in present]
        if not new:
            ClusterAlert.objects.filter(pk=alert_id).update(last_seen=now)
            return None
        ClusterAlertStudent.objects.bulk_create(
            [
                ClusterAlertStudent(alert=alert, student_id=m.student_id, first_report_at=m.first, added_at=now)
                for m in new
            ],
            ignore_conflicts=True,
        )
        alert.case_count = len(present) + len(new)
        alert.window_start = min([alert.window_start, *(m.first for m in new)])
        alert.window_end = max([alert.window_end, *(m.last for m in new)])
        alert.last_seen = now
        alert._change_reason = gettext("新增 %(n)d 名异常学生") % {"n": len(new)}
        alert.save()
        _notify(alert, raised=False)
    return alert


# ---------------------------------------------------------------------------
# Notifications
# ---------------------------------------------------------------------------
def cluster_alert_recipients(alert: ClusterAlert) -> list[int]:
    """Who is told about ``alert``: the campus coordinators of its campus and the
    college admins of the colleges of its students (assignments valid today), each
    confirmed through :func:`scope_for` to see the alert."""
    today = timezone.localdate()
    college_ids = set(ClusterAlertStudent.objects.filter(alert=alert).values_list("student__college_id", flat=True))
    user_ids = (
        Assignment.objects.filter(
            Q(role=Role.CAMPUS_COORDINATOR, campus_id=alert.campus_id)
            | Q(role=Role.COLLEGE_ADMIN, college_id__in=sorted(college_ids)),
            Q(valid_from__isnull=True) | Q(valid_from__lte=today),
            Q(valid_to__isnull=True) | Q(valid_to__gte=today),
        )
        .values_list("user_id", flat=True)
        .distinct()
    )
    users = get_user_model().objects.filter(pk__in=user_ids, is_active=True).order_by("pk")
    return [user.pk for user in users if alert_list(user=user).filter(pk=alert.pk).exists()]


def _notify(alert: ClusterAlert, *, raised: bool) -> int:
    """Counts and a link only: the inbox may be read over a shoulder or forwarded."""
    from notifications.services import notify

    values = {
        "level": alert.get_level_display(),
        "unit": alert.unit_name,
        "n": alert.case_count,
        "hours": alert.window_hours,
    }
    if raised:
        title = gettext("聚集性预警：%(level)s %(unit)s %(hours)d 小时内 %(n)d 名学生报告异常") % values
        key = f"cluster:{alert.pk}:raised"
    else:
        title = gettext("聚集性预警更新：%(level)s %(unit)s 涉及学生增至 %(n)d 名") % values
        key = f"cluster:{alert.pk}:n{alert.case_count}"
    body = gettext("涉及学生 %(n)d 名（阈值：%(hours)d 小时内 %(min)d 名）。请登录系统查看名单并处理。") % {
        **values,
        "min": alert.min_cases,
    }
    return notify(
        recipients=cluster_alert_recipients(alert),
        kind="alert",
        title=title,
        body=body,
        link=reverse("admin:reports_clusteralert_change", args=[alert.pk]),
        dedupe_key=key,
    )


# ---------------------------------------------------------------------------
# Acknowledge and close
# ---------------------------------------------------------------------------
def _error(field_name: str, message, code: str) -> ValidationError:
    return ValidationError({field_name: ValidationError(message, code=code)})


def _locked(actor, alert_id: int) -> ClusterAlert:
    alert = alert_list(user=actor).select_for_update().filter(pk=alert_id).first()
    if alert is None:
        raise _error("alert", _("预警不存在或不在您的管理范围内。"), "does_not_exist")
    return alert


def cluster_alert_acknowledge(*, actor, alert_id: int, now: dt.datetime | None = None) -> ClusterAlert:
    """Acknowledge an open alert (已确认: someone is on it).  Preconditions: ``actor``
    sees the alert (:func:`alert_list`); it is not closed.  Acknowledging an
    acknowledged alert changes nothing (a double click)."""
    with transaction.atomic():
        alert = _locked(actor, alert_id)
        if alert.state == AlertState.CLOSED:
            raise _error("state", _("预警已关闭。"), "closed")
        if alert.state == AlertState.ACKNOWLEDGED:
            return alert
        alert.state = AlertState.ACKNOWLEDGED
        alert.acknowledged_by = actor
        alert.acknowledged_at = now or timezone.now()
        alert._history_user = actor
        alert._change_reason = gettext("确认")
        alert.save()
    return alert


def cluster_alert_close(*, actor, alert_id: int, note: str, now: dt.datetime | None = None) -> ClusterAlert:
    """Close an alert with a note saying what was done (处理说明).  Preconditions:
    ``actor`` sees the alert; the note is not empty; the alert is open or
    acknowledged.  After the close, a new alert of the same unit needs new cases."""
    note = (note or "").strip()
    if not note:
        raise _error("close_note", _("关闭预警必须填写处理说明。"), "note_required")
    with transaction.atomic():
        alert = _locked(actor, alert_id)
        if alert.state == AlertState.CLOSED:
            raise _error("state", _("预警已关闭。"), "closed")
        alert.state = AlertState.CLOSED
        alert.closed_by = actor
        alert.closed_at = now or timezone.now()
        alert.close_note = note[:1000]
        alert._history_user = actor
        alert._change_reason = gettext("关闭")
        alert.save()
    return alert
