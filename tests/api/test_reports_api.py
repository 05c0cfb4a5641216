"""POST/GET /api/v1/reports/ as the mobile app uses it: new, retry, edit, refusals,
error shape and language, filters, and the cost in SQL queries.  Every test runs twice:
with the account given (forced authentication) and with the app's bearer token, with
which a first report is one statement on PostgreSQL (``report_submit_direct``) and
everything else the full way."""

from __future__ import annotations

import datetime as dt
import functools
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from reports.models import DailyReport
from tests.reports import checkin
from tests.reports.checkin import answer, client_for, codes, local, submit, today

CLIENT_ID = "7b0c5a4e-3b59-4a8e-9c55-1c2b7a0d9f11"


@pytest.fixture(autouse=True, params=["forced", "bearer"])
def sign_in(request, monkeypatch) -> str:
    """How this module's clients sign in: ``forced`` or ``bearer`` (see the module)."""
    if request.param == "bearer":
        monkeypatch.setitem(globals(), "client_for", functools.partial(checkin.client_for, bearer=True))
    return request.param


def test_new_report_is_201_and_retry_with_same_client_id_is_200(world, slots, morning):
    client = client_for(world["A"].student_user)
    first = client.post("/api/v1/reports/", answer(client_id=CLIENT_ID), format="json")
    again = client.post("/api/v1/reports/", answer(client_id=CLIENT_ID), format="json")

    assert first.status_code == 201, first.content
    assert again.status_code == 200
    assert again.json() == first.json()
    body = first.json()
    assert body["student"] == world["A"].student.pk
    assert body["source"] == "self"
    assert body["date"] == today().isoformat()
    assert body["temperature"] == 36.5
    assert DailyReport.objects.count() == 1


def test_retry_without_client_id_with_same_answer_returns_same_report(world, slots, morning):
    client = client_for(world["A"].student_user)
    first = client.post("/api/v1/reports/", answer(), format="json")
    again = client.post("/api/v1/reports/", answer(client_id=str(uuid.uuid4())), format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert DailyReport.objects.count() == 1


def test_same_client_id_with_different_answer_is_409(world, slots, morning):
    client = client_for(world["A"].student_user)
    client.post("/api/v1/reports/", answer(client_id=CLIENT_ID), format="json")
    response = client.post("/api/v1/reports/", answer(client_id=CLIENT_ID, temperature="36.8"), format="json")

    assert response.status_code == 409
    assert codes(response, "client_id") == ["client_id_conflict"]
    assert DailyReport.objects.get().temperature == pytest.approx(36.5)


def test_edit_before_close_replaces_the_answer_and_keeps_history(world, slots, morning):
    client = client_for(world["A"].student_user)
    client.post("/api/v1/reports/", answer(), format="json")
    morning.move_to(local(9, 30))
    edited = client.post("/api/v1/reports/", answer(temperature="37.6", note="有点发烧"), format="json")

    assert edited.status_code == 200
    report = DailyReport.objects.get()
    assert (str(report.temperature), report.abnormal, report.late) == ("37.6", True, True)
    assert [str(h.temperature) for h in report.history.order_by("history_date")] == ["36.5", "37.6"]
    assert report.history.latest().history_user == world["A"].student_user


def test_a_new_report_has_the_history_row_django_simple_history_writes(world, slots, morning):
    """The fast path writes the report and its "+" history row itself (one statement on
    PostgreSQL): the row must be what simple-history's own save would have written."""
    client = client_for(world["A"].student_user)
    body = client.post("/api/v1/reports/", answer(client_id=CLIENT_ID, temperature="37.5"), format="json").json()
    report = DailyReport.objects.get(pk=body["id"])
    (row,) = report.history.all()
    assert (row.history_type, row.history_user, row.history_change_reason) == ("+", world["A"].student_user, None)
    assert row.history_date == report.updated_at
    tracked = [f.attname for f in DailyReport.history.model.tracked_fields]
    assert {name: getattr(row, name) for name in tracked} == {name: getattr(report, name) for name in tracked}
    # And it is a real simple-history row: the admin's diff against the next version works.
    morning.move_to(local(8, 30))
    client.post("/api/v1/reports/", answer(temperature="36.6"), format="json")
    latest, first = report.history.order_by("-history_date")
    changed = sorted(change.field for change in latest.diff_against(first).changes)
    assert changed == ["abnormal", "flags", "follow_up", "submitted_at", "submitted_second", "temperature"]


def test_after_close_the_student_is_refused_with_slot_closed(world, slots, morning):
    client = client_for(world["A"].student_user)
    client.post("/api/v1/reports/", answer(), format="json")
    morning.move_to(local(10, 0, 1))

    edit = client.post("/api/v1/reports/", answer(temperature="36.9"), format="json")
    new_after_close = client_for(world["A"].student_user).post("/api/v1/reports/", answer(slot="noon"), format="json")
    retry = client.post("/api/v1/reports/", answer(), format="json")

    assert edit.status_code == 409
    assert codes(edit, "slot") == ["slot_closed"]
    assert edit.json()["errors"]["slot"][0]["message"].startswith("本时段已关闭")
    assert new_after_close.status_code == 409
    assert codes(new_after_close, "slot") == ["slot_not_open"]  # noon opens at 11:30
    assert retry.status_code == 200  # an identical retry still gets its answer
    assert DailyReport.objects.get().temperature == pytest.approx(36.5)


def test_server_set_fields_are_refused(world, slots, morning):
    other = world["A"].classmate
    response = client_for(world["A"].student_user).post(
        "/api/v1/reports/", answer(student=other.pk, source="proxy", status="closed"), format="json"
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {field: [e["code"] for e in errors[field]] for field in errors} == {
        "student": ["not_allowed"],
        "source": ["not_allowed"],
        "status": ["not_allowed"],
    }
    assert not DailyReport.objects.exists()


def test_validation_errors_carry_a_code_per_field(world, slots, morning):
    response = client_for(world["A"].student_user).post(
        "/api/v1/reports/",
        answer(temperature="45", symptoms=["cough", "sneezing"], whereabouts="home", slot="lunch"),
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e["code"] for e in errors["temperature"]] == ["max_value"]
    assert [e["code"] for e in errors["symptoms.1"]] == ["invalid_choice"]
    assert [e["code"] for e in errors["slot"]] == ["invalid_choice"]


def test_cross_field_rules_come_back_as_field_codes(world, slots, morning):
    response = client_for(world["A"].student_user).post(
        "/api/v1/reports/", answer(whereabouts="home", province_code="370000", city_code="110100"), format="json"
    )
    assert response.status_code == 400
    assert codes(response, "city_code") == ["city_not_in_province"]

    response = client_for(world["A"].student_user).post(
        "/api/v1/reports/", answer(symptoms=["other"], whereabouts="home"), format="json"
    )
    errors = response.json()["errors"]
    assert {k: [e["code"] for e in v] for k, v in errors.items()} == {
        "symptoms_other": ["required"],
        "province_code": ["required"],
        "city_code": ["required"],
    }


def test_messages_are_chinese_by_default_and_english_on_request(world, slots, morning):
    chinese = client_for(world["A"].student_user).post("/api/v1/reports/", answer(temperature=None), format="json")
    english = client_for(world["A"].student_user, language="en").post(
        "/api/v1/reports/", answer(temperature=None), format="json"
    )
    assert chinese.json()["errors"]["temperature"] == [{"code": "null", "message": "该字段不能为 null。"}]
    assert english.json()["errors"]["temperature"] == [{"code": "null", "message": "This field may not be null."}]

    morning.move_to(local(10, 30))
    closed = client_for(world["A"].student_user, language="en").post("/api/v1/reports/", answer(), format="json")
    assert closed.json()["errors"]["slot"][0]["code"] == "slot_closed"
    assert "closed" in closed.json()["errors"]["slot"][0]["message"]


def test_staff_cannot_post_a_self_report(world, slots, morning):
    response = client_for(world["A"].counsellor).post("/api/v1/reports/", answer(), format="json")
    assert response.status_code == 403
    assert codes(response, "detail") == ["not_a_student"]


def test_slot_of_another_campus_does_not_exist(world, slots, morning):
    response = client_for(world["B"].student_user).post("/api/v1/reports/", answer(slot="noon"), format="json")
    assert response.status_code == 400
    assert codes(response, "slot") == ["does_not_exist"]


def test_jwt_bearer_token_authenticates_the_app(world, slots, morning):
    client = client_for(None)
    token = RefreshToken.for_user(world["A"].student_user).access_token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.post("/api/v1/reports/", answer(), format="json").status_code == 201
    assert client.get("/api/v1/reports/").json()["count"] == 1


def test_staff_list_filters_by_date_slot_unit_abnormal_and_source(world, slots, morning):
    a = world["A"]
    yesterday = today() - dt.timedelta(days=1)
    submit(a.students[0], when=local(8, 0, day=yesterday))
    submit(a.students[0])
    submit(a.students[1], temperature="38.0")
    submit(a.students[3], when=local(12, 0), slot="noon")
    client = client_for(a.college_admin)

    def count(**params):
        return client.get("/api/v1/reports/", params).json()["count"]

    assert count() == 3  # staff default: today
    assert count(date=yesterday.isoformat()) == 1
    assert count(date_from=yesterday.isoformat(), date_to=today().isoformat()) == 4
    assert count(slot="noon") == 1
    assert count(school_class=a.classes[0].pk) == 2
    assert count(unit=f"school_class:{a.classes[1].pk}") == 1
    assert count(grade=a.grade.pk, abnormal="true") == 1
    assert count(source="proxy") == 0
    assert count(follow_up="open") == 1

    bad = client.get("/api/v1/reports/", {"unit": "planet:1", "campus": "1.5"})
    assert bad.status_code == 400
    assert codes(bad, "unit") == ["invalid"]
    assert codes(bad, "campus") == ["invalid"]


def test_student_lists_only_their_own_history(world, slots, morning):
    submit(world["A"].student)
    submit(world["A"].classmate)
    rows = client_for(world["A"].student_user).get("/api/v1/reports/").json()["results"]
    assert [row["student"] for row in rows] == [world["A"].student.pk]


#: A first report's statements besides transaction control: the probe (slot, existing
#: rows, lazy-bot counts) and the insert — with its history row in the same statement on
#: PostgreSQL, a second one elsewhere.
FIRST_REPORT_STATEMENTS = 2 if connection.vendor == "postgresql" else 3
#: With a bearer token on PostgreSQL a first report is one statement, the account's
#: checks included (report_submit_direct).
DIRECT = connection.vendor == "postgresql"


def first_report_statements(sign_in: str) -> int:
    if sign_in == "bearer":
        return 1 if DIRECT else 1 + FIRST_REPORT_STATEMENTS  # elsewhere the account is read first
    return FIRST_REPORT_STATEMENTS


def _statements(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]


def test_a_submission_costs_a_fixed_number_of_queries(world, slots, morning, sign_in):
    """A first report: one read and one write when the account is given (it comes with
    its student); with a bearer token on PostgreSQL, one statement for everything."""
    client = client_for(world["A"].student_user)
    with CaptureQueriesContext(connection) as first:
        assert client.post("/api/v1/reports/", answer(client_id=CLIENT_ID), format="json").status_code == 201
    with CaptureQueriesContext(connection) as retry:
        assert client.post("/api/v1/reports/", answer(client_id=CLIENT_ID), format="json").status_code == 200
    assert len(_statements(first)) == first_report_statements(sign_in), "\n".join(_statements(first))
    # A retry: the probe finds the report, the locking path reads it back — with a bearer
    # token after the account's read, and on PostgreSQL after the one statement found it.
    bearer = {"forced": 0, "bearer": 1 + DIRECT}[sign_in]
    assert len(_statements(retry)) == 2 + bearer, "\n".join(_statements(retry))


def test_bearer_authentication_loads_the_student_with_the_user(world, slots, morning):
    """With a real token the account is read with its student in one query, and the view
    asks nothing more about the student — on PostgreSQL, in the first report's one
    statement."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(world['A'].student_user)}")
    with CaptureQueriesContext(connection) as captured:
        response = client.post("/api/v1/reports/", answer(client_id=CLIENT_ID), format="json")
    assert response.status_code == 201
    assert response.json()["student"] == world["A"].student.pk
    assert len(_statements(captured)) == first_report_statements("bearer"), "\n".join(_statements(captured))


@pytest.mark.parametrize("n_extra", [0, 40])
def test_submission_cost_does_not_grow_with_history(world, slots, morning, n_extra, sign_in):
    student = world["A"].student
    for days_back in range(1, n_extra + 1):
        submit(student, when=local(8, 0, day=today() - dt.timedelta(days=days_back)), note=str(days_back))
    client = client_for(world["A"].student_user)
    with CaptureQueriesContext(connection) as captured:
        assert client.post("/api/v1/reports/", answer(), format="json").status_code == 201
    assert len(_statements(captured)) == first_report_statements(sign_in)
