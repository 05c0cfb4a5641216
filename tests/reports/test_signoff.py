"""Sign-off up the reporting chain: the order rules, the lock, late amendments and
reopen — each with a test."""

from __future__ import annotations

import datetime as dt

import pytest

from campuses.models import Assignment, Grade, Role
from notifications.models import Notification
from reports.rollup import rollup_compile
from reports.rollup_models import Level, SignOff, SignOffState
from reports.services import ReportAnswer, report_submit_proxy
from reports.signoff import SignOffError, signoff_amendments, signoff_confirm, signoff_reopen
from tests.reports.checkin import local, make_slots, submit

pytestmark = pytest.mark.django_db

DAY = dt.datetime.now(tz=dt.UTC).date() - dt.timedelta(days=2)


@pytest.fixture
def day(world):
    """Both campuses' slots, a few reports on DAY, and the roll-up compiled; campus A
    has a second grade so that a college waits for two grades."""
    make_slots(world)
    Grade.objects.create(college=world["A"].college, year=2025, name="2025级")  # no students: no figures
    for student in world["A"].students[:4] + world["B"].students[:2]:
        submit(student, when=local(8, 0, day=DAY))
    for code in ("morning", "noon"):
        rollup_compile(on=DAY, slot_code=code)
    return DAY


def confirm(user, level, unit, **kw):
    return signoff_confirm(user=user, on=DAY, level=level, unit_id=unit.pk, **kw)


def test_counsellor_confirms_own_grade_with_remarks(world, day):
    signoff = confirm(world["A"].counsellor, Level.GRADE, world["A"].grade, remarks="2人住院已免报")
    assert signoff.state == SignOffState.CONFIRMED
    assert signoff.remarks == "2人住院已免报"
    assert signoff.confirmed_figures["morning"]["reported"] == 4
    assert signoff.confirmed_figures["morning"]["expected"] == 6


def test_counsellor_cannot_confirm_foreign_grade_or_college(world, day):
    with pytest.raises(SignOffError) as err:
        confirm(world["A"].counsellor, Level.GRADE, world["B"].grade)
    assert err.value.code == "forbidden"
    with pytest.raises(SignOffError) as err:
        confirm(world["A"].counsellor, Level.COLLEGE, world["A"].college)
    assert err.value.code == "forbidden"
    for persona in ("coordinator", "monitor", "logistics", "psych"):
        with pytest.raises(SignOffError):
            confirm(getattr(world["A"], persona), Level.GRADE, world["A"].grade)
    assert not SignOff.objects.exists()


def test_college_waits_for_all_its_grades(world, day):
    with pytest.raises(SignOffError) as err:
        confirm(world["A"].college_admin, Level.COLLEGE, world["A"].college)
    assert err.value.code == "children_pending"
    confirm(world["A"].counsellor, Level.GRADE, world["A"].grade)
    # the empty 2025 grade has no figures that day, so it does not hold the college back
    assert confirm(world["A"].college_admin, Level.COLLEGE, world["A"].college).state == SignOffState.CONFIRMED


def test_chain_runs_up_to_the_university_in_order(world, day):
    with pytest.raises(SignOffError):
        confirm(world.uni_admin, Level.UNIVERSITY, world.university)
    for key in ("A", "B"):
        confirm(world[key].counsellor, Level.GRADE, world[key].grade)
        confirm(world[key].college_admin, Level.COLLEGE, world[key].college)
        if key == "A":
            with pytest.raises(SignOffError) as err:
                confirm(world.uni_admin, Level.UNIVERSITY, world.university)
            assert err.value.code == "children_pending"
        confirm(world[key].coordinator, Level.CAMPUS, world[key].campus)
    top = confirm(world.uni_admin, Level.UNIVERSITY, world.university)
    assert top.confirmed_figures["morning"]["reported"] == 6


def test_confirming_twice_is_a_harmless_retry(world, day):
    first = confirm(world["A"].counsellor, Level.GRADE, world["A"].grade, remarks="一")
    second = confirm(world["A"].counsellor, Level.GRADE, world["A"].grade, remarks="二")
    assert first.pk == second.pk and second.remarks == "一"
    assert SignOff.objects.count() == 1


def test_no_confirmation_before_the_rollup(world):
    make_slots(world)
    with pytest.raises(SignOffError) as err:
        confirm(world["A"].counsellor, Level.GRADE, world["A"].grade)
    assert err.value.code == "no_rollup"


def test_confirmed_day_is_locked_and_late_report_is_an_amendment(world, day):
    signoff = confirm(world["A"].counsellor, Level.GRADE, world["A"].grade)
    assert signoff_amendments(signoff) == []
    late = world["A"].students[5]
    report_submit_proxy(
        actor=world["A"].counsellor,
        student_id=late.pk,
        slot_code="morning",
        answer=ReportAnswer.clean(temperature="38.0"),
        on=DAY,
        now=local(21, 0, day=DAY),
    )
    rollup_compile(on=DAY, slot_code="morning")
    signoff.refresh_from_db()
    # the confirmed figures are frozen; the difference shows as an amendment
    assert signoff.confirmed_figures["morning"]["reported"] == 4
    (amendment,) = signoff_amendments(signoff)
    assert amendment.slot_code == "morning"
    assert amendment.changes == {"reported": 1, "missing": -1, "late": 1, "proxy": 1, "abnormal": 1, "fever": 1}


def test_level_above_reopens_with_a_reason_and_history_stays(world, day):
    confirm(world["A"].counsellor, Level.GRADE, world["A"].grade)
    confirm(world["A"].college_admin, Level.COLLEGE, world["A"].college)
    with pytest.raises(SignOffError) as err:
        signoff_reopen(user=world["A"].college_admin, on=DAY, level=Level.GRADE, unit_id=world["A"].grade.pk, reason="")
    assert err.value.code == "reason_required"
    with pytest.raises(SignOffError) as err:  # the counsellor is not above their own grade
        signoff_reopen(user=world["A"].counsellor, on=DAY, level=Level.GRADE, unit_id=world["A"].grade.pk, reason="x")
    assert err.value.code == "forbidden"
    with pytest.raises(SignOffError) as err:  # another campus's coordinator is not above it either
        signoff_reopen(user=world["B"].coordinator, on=DAY, level=Level.GRADE, unit_id=world["A"].grade.pk, reason="x")
    assert err.value.code == "forbidden"
    grade = signoff_reopen(
        user=world["A"].coordinator, on=DAY, level=Level.GRADE, unit_id=world["A"].grade.pk, reason="人数有误"
    )
    assert (grade.state, grade.reopen_reason, grade.reopened_by) == (
        SignOffState.REOPENED,
        "人数有误",
        world["A"].coordinator,
    )
    college = SignOff.objects.get(level=Level.COLLEGE, unit_id=world["A"].college.pk)
    assert college.state == SignOffState.REOPENED and "人数有误" in college.reopen_reason
    assert [h.state for h in grade.history.order_by("history_date")] == ["confirmed", "reopened"]
    # confirming again after the fix is allowed, bottom-up
    with pytest.raises(SignOffError):
        confirm(world["A"].college_admin, Level.COLLEGE, world["A"].college)
    confirm(world["A"].counsellor, Level.GRADE, world["A"].grade)
    assert confirm(world["A"].college_admin, Level.COLLEGE, world["A"].college).state == SignOffState.CONFIRMED
    assert grade.history.count() == 3


def test_reopen_of_an_unconfirmed_day_is_refused(world, day):
    with pytest.raises(SignOffError) as err:
        signoff_reopen(user=world.uni_admin, on=DAY, level=Level.GRADE, unit_id=world["A"].grade.pk, reason="x")
    assert err.value.code == "not_confirmed"


def test_everyone_involved_is_notified_at_each_step(world, day):
    confirm(world["A"].counsellor, Level.GRADE, world["A"].grade)
    told = set(Notification.objects.filter(kind="signoff").values_list("recipient__username", flat=True))
    assert {"counsellor_A", "college_A"} <= told
    assert not {u for u in told if u.endswith("_B")}
    signoff_reopen(user=world["A"].college_admin, on=DAY, level=Level.GRADE, unit_id=world["A"].grade.pk, reason="重报")
    reopened = Notification.objects.filter(kind="signoff", title__contains="退回")
    assert set(reopened.values_list("recipient__username", flat=True)) >= {"counsellor_A", "college_A"}


def test_duty_counsellor_confirms_only_on_roster_dates(world, day):
    duty = world["A"].expired_duty  # roster ended yesterday
    with pytest.raises(SignOffError):
        confirm(duty, Level.GRADE, world["A"].grade)
    Assignment.objects.create(user=duty, role=Role.DUTY_COUNSELLOR, grade=world["A"].grade)
    duty._tongxin_scope = None
    assert confirm(duty, Level.GRADE, world["A"].grade).confirmed_by == duty
