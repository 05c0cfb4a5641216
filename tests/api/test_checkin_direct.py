"""A student's first report in one statement (``reports.services.report_submit_direct``,
PostgreSQL): the same report, history row and answer as the full way
(``report_submit``) for every case it covers, nothing written for any case it does not
— and the account's refusals, read only when the statement wrote nothing, answered as
the authentication answers them."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from psycopg import _queries
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from reports import services
from reports.models import DailyReport
from reports.services import ReportAnswer, SubmitOutcome, report_submit, report_submit_direct
from tests.reports.checkin import answer, client_for, codes, local, submit, today

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="one statement on PostgreSQL only")

#: Every column the two ways must agree on (not the ids, the student, the times).
COMPARED = [
    "date",
    "slot_id",
    "temperature",
    "symptoms",
    "symptoms_other",
    "health_status",
    "whereabouts",
    "note",
    "client_id",
    "source",
    "submitted_second",
    "late",
    "answer_hash",
    "flags",
    "abnormal",
    "suspected_bot",
    "follow_up",
    "follow_up_closed_at",
    "follow_up_closed_by_id",
]


def _history(student, days: int, *, second: int | None = None, vary_answer: bool = False) -> None:
    for back in range(days, 0, -1):
        when = local(7, 0, second if second is not None else back % 60, day=today() - dt.timedelta(days=back))
        submit(student, when=when, note=f"day {back}" if vary_answer else "")


def _with_account(student):
    """``student`` with a login of their own (the world gives one to each campus's first)."""
    if student.user_id is None:
        student.user = get_user_model().objects.create_user(username=f"stu_{student.student_number}")
        student.save()
    return student


def _row(report_id: int) -> dict:
    report = DailyReport.objects.get(pk=report_id)
    return {name: getattr(report, name) for name in COMPARED}


@postgresql_only
@pytest.mark.parametrize(
    ("history", "values", "at"),
    [
        pytest.param({"days": 0}, {"temperature": "36.5"}, (8, 0, 5), id="healthy"),
        pytest.param({"days": 0}, {"temperature": "36.5"}, (6, 0, 0), id="at-the-opening"),
        pytest.param({"days": 0}, {"temperature": "36.5"}, (9, 0, 0), id="at-the-due-time-not-late"),
        pytest.param({"days": 0}, {"temperature": "38.2", "symptoms": ["cough"]}, (9, 0, 1), id="fever-late"),
        pytest.param({"days": 0}, {"temperature": "36.5"}, (9, 59, 59), id="last-second-late"),
        pytest.param({"days": 7}, {"temperature": "36.5"}, (7, 0, 30), id="identical-answers"),
        pytest.param({"days": 6}, {"temperature": "36.5"}, (7, 0, 30), id="six-days-not-a-bot"),
        pytest.param(
            {"days": 7, "second": 42, "vary_answer": True}, {"temperature": "36.5"}, (7, 0, 42), id="same-second"
        ),
        pytest.param({"days": 7, "second": 42}, {"temperature": "37.4"}, (7, 0, 42), id="fever-and-both-bot-flags"),
        pytest.param({"days": 7, "second": 42}, {"temperature": "36.5"}, (7, 0, 42), id="both-bot-flags"),
    ],
)
def test_the_one_statement_writes_what_the_full_way_writes(world, slots, history, values, at):
    """Two students with the same history and answer, one the full way and one in one
    statement: the same report (flags, follow-up, late...) and the same history row."""
    full_student, direct_student = world["A"].students[0], _with_account(world["A"].students[1])
    for student in (full_student, direct_student):
        _history(student, **history)
    now = local(*at)
    full = report_submit(
        student=full_student, slot_code="morning", answer=ReportAnswer.clean(**values), by=full_student.user, now=now
    )
    direct = report_submit_direct(
        user_id=direct_student.user_id, slot_code="morning", answer=ReportAnswer.clean(**values), now=now
    )

    assert direct is not None and direct.outcome == SubmitOutcome.CREATED
    assert _row(direct.report.pk) == _row(full.report.pk)
    stored = DailyReport.objects.get(pk=direct.report.pk)
    assert (stored.student_id, stored.submitted_by_id, stored.submitted_at) == (
        direct_student.pk,
        direct_student.user_id,
        now,
    )
    units = ("campus_id", "college_id", "grade_id", "school_class_id")
    assert [getattr(stored, u) for u in units] == [getattr(direct_student, u) for u in units]
    # What the API answers from the returned report is what is stored.
    assert {name: getattr(direct.report, name) for name in COMPARED} == _row(direct.report.pk)
    assert (direct.report.student.student_number, direct.report.student.name) == (
        direct_student.student_number,
        direct_student.name,
    )
    (row,) = stored.history.all()
    tracked = [f.attname for f in DailyReport.history.model.tracked_fields]
    assert {n: getattr(row, n) for n in tracked} == {n: getattr(stored, n) for n in tracked}
    assert (row.history_type, row.history_user_id, row.history_date) == ("+", direct_student.user_id, stored.updated_at)


@postgresql_only
def test_lazy_bot_days_setting_is_the_statements_too(world, slots, settings):
    settings.TONGXIN = {**settings.TONGXIN, "CHECKIN_LAZY_BOT_DAYS": 3}
    flagged, off = world["A"].students[0], _with_account(world["A"].students[1])
    _history(flagged, 3)
    result = report_submit_direct(
        user_id=flagged.user_id, slot_code="morning", answer=ReportAnswer.clean(temperature="36.5"), now=local(7, 0, 30)
    )
    assert (result.report.flags, result.report.suspected_bot) == (["identical_answers"], True)

    settings.TONGXIN = {**settings.TONGXIN, "CHECKIN_LAZY_BOT_DAYS": 0}  # the check off
    _history(off, 7)
    result = report_submit_direct(
        user_id=off.user_id, slot_code="morning", answer=ReportAnswer.clean(temperature="36.5"), now=local(7, 0, 30)
    )
    assert DailyReport.objects.get(pk=result.report.pk).flags == []


@postgresql_only
@pytest.mark.parametrize(
    "case",
    [
        "retry",
        "client_id_used",
        "slot_not_open",
        "slot_closed",
        "other_campus_slot",
        "inactive_slot",
        "another_day",
        "inactive_account",
        "not_a_student",
        "no_account",
    ],
)
def test_anything_but_a_plain_first_report_writes_nothing(world, slots, case):
    """Each case the full way decides (and explains) leaves the one statement without a
    row written and answers None."""
    student = world["A"].student
    user_id, code, now, on, client_id = student.user_id, "morning", local(8, 0), None, uuid.uuid4()
    if case == "retry":
        submit(student)
    elif case == "client_id_used":
        report_submit(
            student=student,
            slot_code="morning",
            answer=ReportAnswer.clean(temperature="36.6"),
            client_id=client_id,
            on=today() - dt.timedelta(days=1),
            by=student.user,
            now=local(8, 0, day=today() - dt.timedelta(days=1)),
        )
    elif case == "slot_not_open":
        now = local(5, 59, 59)
    elif case == "slot_closed":
        now = local(10, 0)
    elif case == "other_campus_slot":
        code = "noon"  # campus A's; campus B has none
        user_id = world["B"].student.user_id
        now = local(12, 0)
    elif case == "inactive_slot":
        slots["A"]["morning"].active = False
        slots["A"]["morning"].save()
    elif case == "another_day":
        on = today() - dt.timedelta(days=1)
    elif case == "inactive_account":
        student.user.is_active = False
        student.user.save()
    elif case == "not_a_student":
        user_id = world["A"].counsellor.pk
    elif case == "no_account":
        user_id = 10**9
    before = DailyReport.objects.count()

    result = report_submit_direct(
        user_id=user_id,
        slot_code=code,
        answer=ReportAnswer.clean(temperature="36.5"),
        client_id=client_id,
        on=on,
        now=now,
    )

    assert result is None
    assert DailyReport.objects.count() == before


def test_elsewhere_the_full_way_always_decides(world, slots):
    """Where the database cannot run the statement (SQLite: no INSERT in a WITH), the
    function says so by writing nothing."""
    if connection.vendor == "postgresql":
        assert services._direct_statement() is not None
        return
    assert (
        report_submit_direct(
            user_id=world["A"].student.user_id, slot_code="morning", answer=ReportAnswer.clean(temperature="36.5")
        )
        is None
    )
    assert not DailyReport.objects.exists()


@postgresql_only
def test_the_statement_is_short_enough_for_psycopgs_conversion_cache():
    """psycopg converts a statement's %(name)s placeholders once and keeps the result only
    for statements up to MAX_CACHED_STATEMENT_LENGTH bytes: a longer one would be parsed
    again on every check-in (6 % of a web worker's time under load, measured)."""
    assert len(services._direct_statement().sql.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH


# ---------------------------------------------------------------------------
# Through the API, with the app's bearer token: the account's refusals
# ---------------------------------------------------------------------------
def _bearer(user) -> APIClient:
    return client_for(user, bearer=True)


def test_a_deactivated_account_is_refused_as_before_and_nothing_is_stored(world, slots, morning):
    user = world["A"].student_user
    client = _bearer(user)  # the token was issued while the account was active
    user.is_active = False
    user.save()

    response = client.post("/api/v1/reports/", answer(), format="json")
    bad_body = client.post("/api/v1/reports/", answer(temperature="50"), format="json")

    assert (response.status_code, codes(response, "detail")) == (401, ["user_inactive"])
    # The account is refused before its body is looked at, as it always was.
    assert (bad_body.status_code, codes(bad_body, "detail")) == (401, ["user_inactive"])
    assert not DailyReport.objects.exists()


def test_a_deleted_account_is_refused_and_nothing_is_stored(world, slots, morning):
    user = world["A"].student_user
    token = AccessToken.for_user(user)
    world["A"].student.delete()
    user.delete()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = client.post("/api/v1/reports/", answer(), format="json")

    assert (response.status_code, codes(response, "detail")) == (401, ["user_not_found"])
    assert not DailyReport.objects.exists()


def test_a_staff_token_gets_not_a_student(world, slots, morning):
    response = _bearer(world["A"].counsellor).post("/api/v1/reports/", answer(), format="json")
    assert (response.status_code, codes(response, "detail")) == (403, ["not_a_student"])
    assert not DailyReport.objects.exists()


def test_a_bad_token_is_refused_before_anything(world, slots, morning):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    response = client.post("/api/v1/reports/", answer(), format="json")
    assert (response.status_code, codes(response, "detail")) == (401, ["token_not_valid"])


def test_the_answer_of_a_first_report_is_the_stored_report(world, slots, morning):
    """The 201's body — built from what the statement returned, not read back — is what a
    later read of the same report shows."""
    client = _bearer(world["A"].student_user)
    created = client.post("/api/v1/reports/", answer(temperature="37.6", symptoms=["cough"]), format="json")
    assert created.status_code == 201
    listed = client.get("/api/v1/reports/").json()["results"]
    assert listed == [created.json()]
    assert created.json()["student_number"] == world["A"].student.student_number
    assert created.json()["flags"] == ["fever", "symptoms"]
