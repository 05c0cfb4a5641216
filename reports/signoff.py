"""Sign-off of the day's figures up the reporting chain (逐级审核确认).

Product rule (DESIGN.md and issue 4, the way DHIS2 approves data): the counsellor
confirms each of their grades with remarks; a college can confirm only when all its
grades are confirmed; then the campus when all its colleges are; then the
university.  A confirmed day is locked: its figures are frozen on the sign-off, and a
report that arrives or changes later is a late amendment, shown as the difference
between the live snapshot and the confirmed figures.  The level above can reopen a
confirmed day with a reason, which reopens the confirmations above it too; every
change stays in the history.  Everyone involved is notified at each step.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campuses.models import Assignment, Campus, College, Grade, Role, SchoolClass, University
from campuses.scoping import scope_for
from reports.rollup_models import FIGURES, LEVEL_ABOVE, LEVEL_BELOW, Level, RollupSnapshot, SignOff, SignOffState

#: The levels that are signed off, bottom-up, and the unit model of each.
SIGNOFF_LEVELS: tuple[str, ...] = (Level.GRADE, Level.COLLEGE, Level.CAMPUS, Level.UNIVERSITY)
LEVEL_MODELS = {
    Level.SCHOOL_CLASS: SchoolClass,
    Level.GRADE: Grade,
    Level.COLLEGE: College,
    Level.CAMPUS: Campus,
    Level.UNIVERSITY: University,
}
#: Who confirms each level (the roles must also reach the unit through their scope).
CONFIRM_ROLES = {
    Level.GRADE: frozenset({Role.COUNSELLOR, Role.DUTY_COUNSELLOR, Role.COLLEGE_ADMIN}),
    Level.COLLEGE: frozenset({Role.COLLEGE_ADMIN}),
    Level.CAMPUS: frozenset({Role.CAMPUS_COORDINATOR}),
    Level.UNIVERSITY: frozenset({Role.UNIVERSITY_ADMIN}),
}
#: Who may reopen a confirmed unit: the levels above it.
REOPEN_ROLES = {
    Level.GRADE: frozenset({Role.COLLEGE_ADMIN, Role.CAMPUS_COORDINATOR, Role.UNIVERSITY_ADMIN}),
    Level.COLLEGE: frozenset({Role.CAMPUS_COORDINATOR, Role.UNIVERSITY_ADMIN}),
    Level.CAMPUS: frozenset({Role.UNIVERSITY_ADMIN}),
    Level.UNIVERSITY: frozenset(),  # only a superuser
}
# The chain restricted to the signed-off levels: a grade's classes are not signed off.
_CHILD = {level: LEVEL_BELOW[level] for level in SIGNOFF_LEVELS if LEVEL_BELOW.get(level) in SIGNOFF_LEVELS}
_PARENT = {level: LEVEL_ABOVE[level] for level in SIGNOFF_LEVELS if level in LEVEL_ABOVE}


class SignOffError(Exception):
    """A sign-off that the rules refuse; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _unit(level: str, unit_id: int):
    if level not in SIGNOFF_LEVELS:
        raise SignOffError("invalid_level", _("该层级不需要确认。"))
    unit = LEVEL_MODELS[level].objects.filter(pk=unit_id).first()
    if unit is None:
        raise SignOffError("unknown_unit", _("单位不存在。"))
    return unit


def _may(user, level: str, unit_id: int, roles: frozenset[str]) -> bool:
    if user.is_superuser:
        return True
    if not roles:
        return False
    return scope_for(user).narrowed(roles).units(LEVEL_MODELS[level]).filter(pk=unit_id).exists()


def _snapshots(on: dt.date, level: str, unit_id: int) -> dict[str, dict]:
    rows = RollupSnapshot.objects.filter(date=on, level=level, unit_id=unit_id)
    return {row.slot_code: {**row.figures(), "tags": row.tags} for row in rows}


def _parent_id(level: str, unit_id: int) -> int | None:
    snap = RollupSnapshot.objects.filter(level=level, unit_id=unit_id).values_list("parent_id", flat=True).first()
    return snap


@transaction.atomic
def signoff_confirm(*, user, on: dt.date, level: str, unit_id: int, remarks: str = "") -> SignOff:
    """Confirm the figures of a unit for a day.  Preconditions: the user holds a
    confirming role reaching the unit; the roll-up of that day exists for the unit;
    every child unit (grades of a college, colleges of a campus, campuses of the
    university) that has figures that day is confirmed.  Confirming a confirmed unit
    again changes nothing (a retried request)."""
    unit = _unit(level, unit_id)
    if not _may(user, level, unit_id, CONFIRM_ROLES[level]):
        raise SignOffError("forbidden", _("您无权确认该单位的数据。"))
    existing = SignOff.objects.select_for_update().filter(date=on, level=level, unit_id=unit_id).first()
    if existing is not None and existing.state == SignOffState.CONFIRMED:
        return existing
    figures = _snapshots(on, level, unit_id)
    if not figures:
        raise SignOffError("no_rollup", _("该日的汇总尚未生成，无法确认。"))
    child = _CHILD.get(level)
    if child is not None:
        children = set(
            RollupSnapshot.objects.filter(date=on, level=child, parent_id=unit_id).values_list("unit_id", flat=True)
        )
        confirmed = set(
            SignOff.objects.filter(
                date=on, level=child, unit_id__in=children, state=SignOffState.CONFIRMED
            ).values_list("unit_id", flat=True)
        )
        if children - confirmed:
            raise SignOffError(
                "children_pending",
                _("下级单位尚未全部确认（还差 %(n)d 个）。") % {"n": len(children - confirmed)},
            )
    now = timezone.now()
    signoff = existing or SignOff(date=on, level=level, unit_id=unit_id)
    signoff.state = SignOffState.CONFIRMED
    signoff.remarks = remarks
    signoff.confirmed_figures = figures
    signoff.confirmed_by = user
    signoff.confirmed_at = now
    signoff.save()
    _notify_step(
        on=on,
        level=level,
        unit=unit,
        title=_("%(unit)s %(date)s 数据已确认") % {"unit": unit, "date": on.isoformat()},
        key=f"signoff:{on.isoformat()}:{level}:{unit_id}:{now.timestamp():.0f}",
    )
    return signoff


@transaction.atomic
def signoff_reopen(*, user, on: dt.date, level: str, unit_id: int, reason: str) -> SignOff:
    """Reopen a confirmed unit's day (退回).  Only a role of a level above may do it and
    a reason is required; the confirmations above the unit are reopened too, since
    their figures include this one.  History keeps every revision."""
    unit = _unit(level, unit_id)
    reason = (reason or "").strip()
    if not reason:
        raise SignOffError("reason_required", _("退回必须说明原因。"))
    if not _may(user, level, unit_id, REOPEN_ROLES[level]):
        raise SignOffError("forbidden", _("只有上级单位可以退回。"))
    signoff = SignOff.objects.select_for_update().filter(date=on, level=level, unit_id=unit_id).first()
    if signoff is None or signoff.state != SignOffState.CONFIRMED:
        raise SignOffError("not_confirmed", _("该单位当日数据尚未确认，无需退回。"))
    now = timezone.now()
    current_level, current_id, why = level, unit_id, reason
    while signoff is not None and signoff.state == SignOffState.CONFIRMED:
        signoff.state = SignOffState.REOPENED
        signoff.reopened_by = user
        signoff.reopened_at = now
        signoff.reopen_reason = why
        signoff.save()
        parent_level = _PARENT.get(current_level)
        parent_id = _parent_id(current_level, current_id)
        if parent_level is None or parent_id is None:
            break
        current_level, current_id = parent_level, parent_id
        why = _("下级单位 %(unit)s 被退回：%(reason)s") % {"unit": unit, "reason": reason}
        signoff = SignOff.objects.select_for_update().filter(date=on, level=current_level, unit_id=current_id).first()
    _notify_step(
        on=on,
        level=level,
        unit=unit,
        title=_("%(unit)s %(date)s 数据被退回：%(reason)s") % {"unit": unit, "date": on.isoformat(), "reason": reason},
        key=f"reopen:{on.isoformat()}:{level}:{unit_id}:{now.timestamp():.0f}",
    )
    return SignOff.objects.get(date=on, level=level, unit_id=unit_id)


@dataclass
class Amendment:
    """The difference between a unit's live figures and what was confirmed."""

    slot_code: str
    confirmed: dict[str, int]
    now: dict[str, int]

    @property
    def changes(self) -> dict[str, int]:
        return {
            name: self.now[name] - self.confirmed.get(name, 0)
            for name in FIGURES
            if self.now[name] != self.confirmed.get(name, 0)
        }


def signoff_amendments(signoff: SignOff) -> list[Amendment]:
    """Late amendments of a confirmed day: for each slot whose current snapshot
    differs from the confirmed figures, the difference (the snapshot is recompiled by
    any later roll-up run; the confirmed figures never change)."""
    current = _snapshots(signoff.date, signoff.level, signoff.unit_id)
    out = []
    for slot_code, now in sorted(current.items()):
        confirmed = signoff.confirmed_figures.get(slot_code, {})
        amendment = Amendment(slot_code=slot_code, confirmed=confirmed, now=now)
        if amendment.changes:
            out.append(amendment)
    return out


def _involved_users(level: str, unit) -> list[int]:
    """Who hears about a step: those who confirm this unit and those of the level above."""
    fields = {Level.GRADE: "grade", Level.COLLEGE: "college", Level.CAMPUS: "campus", Level.UNIVERSITY: "university"}
    ids = set(Assignment.objects.filter(**{fields[level]: unit}).values_list("user_id", flat=True))
    parent_level = _PARENT.get(level)
    if parent_level is not None:
        parent = {
            Level.GRADE: lambda u: u.college,
            Level.COLLEGE: lambda u: u.campus,
            Level.CAMPUS: lambda u: u.university,
        }[level](unit)
        ids |= set(Assignment.objects.filter(**{fields[parent_level]: parent}).values_list("user_id", flat=True))
    return sorted(ids)


def _notify_step(*, on: dt.date, level: str, unit, title: str, key: str) -> None:
    from notifications.services import notify

    notify(
        recipients=_involved_users(level, unit),
        kind="signoff",
        title=title,
        body=title,
        link=f"/dashboard/?date={on.isoformat()}&unit={level}:{unit.pk}",
        dedupe_key=key,
    )
