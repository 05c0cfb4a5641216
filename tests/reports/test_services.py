"""The check-in rules in reports.services: abnormal answers and follow-ups, the slot
window, retries and edits, the lazy bot, proxy reports, excusals, the contact log."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.core.exceptions import ValidationError

from reports.models import DailyReport, Excusal, FollowUp
from reports.services import (
    CheckinRefused,
    ReportAnswer,
    SubmitOutcome,
    contacts_mark,
    excusal_create,
    excusal_delete,
    report_follow_up_close,
    report_submit,
    report_submit_proxy,
)
from students.models import ContactLog
from tests.reports.checkin import local, submit, today


def _codes(exc: ValidationError) -> dict[str, list[str]]:
    return {field: [e.code for e in errors] for field, errors in exc.error_dict.items()}


# ---------------------------------------------------------------------------
# Abnormal answers
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("answer", "flags"),
    [
        ({"temperature": "37.3"}, ["fever"]),
        ({"temperature": "37.2"}, []),
        ({"symptoms": ["cough"]}, ["symptoms"]),
        ({"health_status": "unwell"}, ["unwell"]),
        ({"risk_area_14d": True}, ["risk_area"]),
        ({"case_contact": True}, ["case_contact"]),
        ({"temperature": "38.5", "symptoms": ["fever", "cough"]}, ["fever", "symptoms"]),
    ],
)
def test_abnormal_answer_puts_the_student_on_the_follow_up_list(world, slots, answer, flags):
    report = submit(world["A"].student, **answer).report
    assert report.flags == flags
    assert report.abnormal is bool(flags)
    assert report.follow_up == (FollowUp.OPEN if flags else FollowUp.NONE)


def test_follow_up_list_is_the_open_reports_of_my_students(world, slots):
    from reports.selectors import follow_up_list

    fever = submit(world["A"].students[1], temperature="38.0").report
    submit(world["A"].students[2])
    submit(world["B"].students[1], temperature="38.0")

    assert list(follow_up_list(user=world["A"].counsellor)) == [fever]
    assert list(follow_up_list(user=world["A"].monitor)) == []

    report_follow_up_close(actor=world["A"].counsellor, report_id=fever.pk, note="已就医")
    assert list(follow_up_list(user=world["A"].counsellor)) == []
    contact = ContactLog.objects.get(student=world["A"].students[1])
    assert (contact.outcome, contact.contacted_by, contact.note) == ("followed_up", world["A"].counsellor, "已就医")


def test_closed_follow_up_reopens_only_for_a_new_finding(world, slots, time_machine):
    time_machine.move_to(local(7, 0), tick=False)
    student = world["A"].student
    report = submit(student, when=local(7, 0), temperature="38.0").report
    report_follow_up_close(actor=world["A"].counsellor, report_id=report.pk)

    same_finding = submit(student, when=local(7, 30), temperature="38.3").report
    assert same_finding.follow_up == FollowUp.CLOSED
    new_finding = submit(student, when=local(7, 40), temperature="38.3", case_contact=True).report
    assert new_finding.follow_up == FollowUp.OPEN
    assert new_finding.follow_up_closed_by is None


# ---------------------------------------------------------------------------
# The slot window, retries and edits
# ---------------------------------------------------------------------------
def test_report_after_due_time_is_late(world, slots):
    assert submit(world["A"].student, when=local(8, 59)).report.late is False
    assert submit(world["A"].classmate, when=local(9, 0, 1)).report.late is True


@pytest.mark.parametrize(("when", "code"), [(local(5, 59), "slot_not_open"), (local(10, 0), "slot_closed")])
def test_outside_the_window_a_new_report_is_refused(world, slots, when, code):
    with pytest.raises(CheckinRefused) as refused:
        submit(world["A"].student, when=when)
    assert _codes(refused.value) == {"slot": [code]}
    assert refused.value.http_status == 409


def test_a_past_date_is_closed(world, slots):
    student = world["A"].student
    with pytest.raises(CheckinRefused) as refused:
        report_submit(
            student=student,
            slot_code="morning",
            answer=ReportAnswer.clean(temperature="36.5"),
            on=today() - dt.timedelta(days=1),
            now=local(8, 0),
        )
    assert _codes(refused.value) == {"slot": ["slot_closed"]}


def test_identical_retry_returns_the_same_report_unchanged(world, slots):
    first = submit(world["A"].student, when=local(8, 0))
    retry = submit(world["A"].student, when=local(11, 0))  # even after the close
    assert retry.outcome == SubmitOutcome.UNCHANGED
    assert retry.report.pk == first.report.pk
    assert retry.report.history.count() == 1


def test_late_retry_of_an_earlier_answer_cannot_undo_an_edit(world, slots):
    student = world["A"].student
    first_id, second_id = uuid.uuid4(), uuid.uuid4()

    def send(client_id, temperature, when):
        return report_submit(
            student=student,
            slot_code="morning",
            answer=ReportAnswer.clean(temperature=temperature),
            client_id=client_id,
            now=when,
        )

    send(first_id, "36.5", local(8, 0))
    assert send(second_id, "36.7", local(8, 5)).outcome == SubmitOutcome.UPDATED
    with pytest.raises(CheckinRefused) as refused:
        send(first_id, "36.5", local(8, 10))  # the app's queue replays the first one
    assert _codes(refused.value) == {"client_id": ["client_id_conflict"]}
    assert str(DailyReport.objects.get().temperature) == "36.7"


def test_report_copies_the_students_units_and_local_date(world, slots, time_machine):
    time_machine.move_to(local(6, 0, 5), tick=False)
    student = world["A"].other_class_student
    report = report_submit(student=student, slot_code="morning", answer=ReportAnswer.clean(temperature="36.4")).report
    assert (report.campus_id, report.college_id, report.grade_id, report.school_class_id) == (
        student.campus_id,
        student.college_id,
        student.grade_id,
        student.school_class_id,
    )
    assert report.date == today()
    assert report.submitted_second == 6 * 3600 + 5


# ---------------------------------------------------------------------------
# The lazy bot
# ---------------------------------------------------------------------------
def _history(student, days: int, *, second: int | None = None, vary_answer: bool = False):
    for back in range(days, 0, -1):
        day = today() - dt.timedelta(days=back)
        when = local(7, 0, second if second is not None else back % 60, day=day)
        submit(student, when=when, note=f"day {back}" if vary_answer else "")


def test_identical_answers_for_n_days_flag_a_suspected_bot(world, slots):
    student = world["A"].student
    _history(student, 7)
    report = submit(student, when=local(7, 0, 30)).report
    assert report.suspected_bot is True
    assert report.flags == ["identical_answers"]
    assert report.abnormal is False
    assert report.follow_up == FollowUp.OPEN


def test_fewer_identical_days_are_not_flagged(world, slots):
    student = world["A"].student
    _history(student, 6)
    assert submit(student, when=local(7, 0, 30)).report.suspected_bot is False


def test_same_second_every_day_flags_a_suspected_bot(world, slots):
    student = world["A"].student
    _history(student, 7, second=42, vary_answer=True)
    report = submit(student, when=local(7, 0, 42), note="today").report
    assert report.flags == ["same_second"]
    assert submit(world["A"].classmate, when=local(7, 0, 42)).report.suspected_bot is False


def test_lazy_bot_days_are_configurable(world, slots, settings):
    settings.TONGXIN = {**settings.TONGXIN, "CHECKIN_LAZY_BOT_DAYS": 3}
    student = world["A"].student
    _history(student, 3)
    assert submit(student, when=local(7, 0, 30)).report.suspected_bot is True


# ---------------------------------------------------------------------------
# Proxy reports (代报)
# ---------------------------------------------------------------------------
def test_proxy_report_after_close_writes_a_contact_log_entry(world, slots):
    counsellor, student = world["A"].counsellor, world["A"].students[4]
    result = report_submit_proxy(
        actor=counsellor,
        student_id=student.pk,
        slot_code="morning",
        answer=ReportAnswer.clean(require_temperature=False, temperature=None),
        note="电话联系，学生手机没电",
        now=local(15, 0),
    )
    report = result.report
    assert (result.outcome, report.source, report.submitted_by, report.temperature) == (
        SubmitOutcome.CREATED,
        "proxy",
        counsellor,
        None,
    )
    assert report.late is True
    contact = result.contact
    assert (contact.student, contact.outcome, contact.contacted_by, contact.note) == (
        student,
        "proxy_reported",
        counsellor,
        "电话联系，学生手机没电",
    )
    assert report.history.get().history_user == counsellor

    again = report_submit_proxy(
        actor=counsellor,
        student_id=student.pk,
        slot_code="morning",
        answer=ReportAnswer.clean(require_temperature=False, temperature=None),
        now=local(15, 1),
    )
    assert again.outcome == SubmitOutcome.UNCHANGED
    assert ContactLog.objects.filter(student=student).count() == 1  # a double tap logs once


def test_proxy_replaces_a_closed_self_report_and_keeps_the_history(world, slots):
    student = world["A"].student
    submit(student, when=local(8, 0))
    report_submit_proxy(
        actor=world["A"].college_admin,
        student_id=student.pk,
        slot_code="morning",
        answer=ReportAnswer.clean(temperature="37.8"),
        now=local(16, 0),
    )
    report = DailyReport.objects.get()
    assert (report.source, report.abnormal) == ("proxy", True)
    assert [h.source for h in report.history.order_by("history_date")] == ["self", "proxy"]


@pytest.mark.parametrize("persona", ["monitor", "coordinator", "psych", "logistics", "expired_duty"])
def test_proxy_is_refused_to_roles_that_do_not_chase(world, slots, persona):
    with pytest.raises(ValidationError) as refused:
        report_submit_proxy(
            actor=getattr(world["A"], persona),
            student_id=world["A"].students[2].pk,
            slot_code="morning",
            answer=ReportAnswer.clean(temperature="36.5"),
            now=local(9, 0),
        )
    assert _codes(refused.value) == {"student": ["does_not_exist"]}


def test_proxy_refuses_a_future_date(world, slots):
    with pytest.raises(ValidationError) as refused:
        report_submit_proxy(
            actor=world["A"].counsellor,
            student_id=world["A"].student.pk,
            slot_code="morning",
            answer=ReportAnswer.clean(temperature="36.5"),
            on=today() + dt.timedelta(days=1),
            now=local(9, 0),
        )
    assert _codes(refused.value) == {"date": ["date_in_future"]}


# ---------------------------------------------------------------------------
# Excusals and the contact log
# ---------------------------------------------------------------------------
def test_excusal_records_who_and_why_and_other_needs_a_note(world, slots):
    counsellor, student = world["A"].counsellor, world["A"].students[2]
    with pytest.raises(ValidationError) as refused:
        excusal_create(actor=counsellor, student_id=student.pk, reason="other", starts_on=today())
    assert _codes(refused.value) == {"note": ["required"]}

    excusal = excusal_create(
        actor=counsellor, student_id=student.pk, reason="other", note="赴外地参加比赛", starts_on=today()
    )
    assert (excusal.created_by, excusal.ends_on) == (counsellor, None)

    excusal_delete(actor=counsellor, excusal_id=excusal.pk)
    assert not Excusal.objects.exists()
    assert Excusal.history.filter(history_type="-").get().history_user == counsellor


def test_excusal_range_must_be_ordered(world, slots):
    with pytest.raises(ValidationError) as refused:
        excusal_create(
            actor=world["A"].counsellor,
            student_id=world["A"].student.pk,
            reason="on_leave",
            starts_on=today(),
            ends_on=today() - dt.timedelta(days=1),
        )
    assert _codes(refused.value) == {"ends_on": ["before_start"]}


def test_contacts_mark_refuses_a_foreign_student_and_writes_nothing(world, slots):
    ids = [world["A"].students[2].pk, world["B"].students[2].pk]
    with pytest.raises(ValidationError) as refused:
        contacts_mark(actor=world["A"].counsellor, student_ids=ids, channel="phone")
    assert _codes(refused.value) == {"students": ["does_not_exist"]}
    assert not ContactLog.objects.exists()


@pytest.mark.parametrize(
    ("values", "errors"),
    [
        ({"temperature": "33.9"}, {"temperature": ["out_of_range"]}),
        ({"temperature": None}, {"temperature": ["required"]}),
        ({"symptoms": ["other"]}, {"symptoms_other": ["required"]}),
        ({"whereabouts": "home"}, {"province_code": ["required"], "city_code": ["required"]}),
        ({"whereabouts": "home", "province_code": "37", "city_code": "370100"}, {"province_code": ["invalid"]}),
        ({"whereabouts": "home", "province_code": "370000", "city_code": "370000"}, {"city_code": ["invalid"]}),
        (
            {"whereabouts": "elsewhere", "province_code": "370000", "city_code": "110100"},
            {"city_code": ["city_not_in_province"]},
        ),
    ],
)
def test_answer_rules(values, errors):
    with pytest.raises(ValidationError) as refused:
        ReportAnswer.clean(**{"temperature": "36.5", **values})
    assert _codes(refused.value) == errors


def test_answer_is_normalised_so_equal_answers_digest_equal():
    one = ReportAnswer.clean(temperature="36.50", symptoms=["cough", "fatigue", "cough"], note=" 好 ")
    two = ReportAnswer.clean(temperature=36.5, symptoms=["fatigue", "cough"], note="好")
    assert one == two
    assert one.digest() == two.digest()
    assert ReportAnswer.clean(temperature="36.5", symptoms_other="头痛").symptoms == ("other",)


def test_duty_counsellor_on_the_roster_today_may_proxy(world, slots):
    from campuses.models import Assignment, Role

    duty = type(world["A"].counsellor).objects.create(username="duty_today", is_staff=True)
    Assignment.objects.create(
        user=duty, role=Role.DUTY_COUNSELLOR, college=world["A"].college, valid_from=today(), valid_to=today()
    )
    result = report_submit_proxy(
        actor=duty,
        student_id=world["A"].students[4].pk,
        slot_code="morning",
        answer=ReportAnswer.clean(temperature="36.6"),
        now=local(11, 0),
    )
    assert (result.outcome, result.report.submitted_by, result.contact.contacted_by) == (
        SubmitOutcome.CREATED,
        duty,
        duty,
    )


@pytest.mark.parametrize(
    ("when", "code"),
    [
        (dt.datetime(627, 9, 24, 21, 1, tzinfo=dt.UTC), "too_old"),  # found by schemathesis: a typo, not a contact
        (local(9, 0, day=today() - dt.timedelta(days=400)), "too_old"),
        (local(9, 0, day=today() + dt.timedelta(days=1)), "in_future"),
    ],
)
def test_a_contact_time_must_be_within_the_last_year_and_not_ahead(world, slots, when, code):
    with pytest.raises(ValidationError) as refused:
        contacts_mark(
            actor=world["A"].counsellor, student_ids=[world["A"].students[0].pk], channel="phone", contacted_at=when
        )
    assert _codes(refused.value) == {"contacted_at": [code]}
    last_month = local(9, 0, day=today() - dt.timedelta(days=30))
    (entry,) = contacts_mark(
        actor=world["A"].counsellor, student_ids=[world["A"].students[0].pk], channel="phone", contacted_at=last_month
    )
    assert entry.contacted_at == last_month
