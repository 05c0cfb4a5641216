"""Property test of the report validator through the API: whatever a client sends,
the answer is a report (200/201), a refusal with field codes (400, or 409 for the
slot window and client-id conflicts) — never a 500, never half-saved."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from reports.models import DailyReport, HealthStatus, Symptom
from students.models import Whereabouts
from tests.reports.checkin import client_for, today

JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=5,
)
PLAUSIBLE = {
    "slot": st.sampled_from(["morning", "noon", "evening", "Morning"]),
    "date": st.sampled_from([today(), today() - dt.timedelta(days=1), today() + dt.timedelta(days=1)]).map(str),
    "client_id": st.uuids().map(str) | st.sampled_from(["", "not-a-uuid"]),
    "temperature": st.decimals(min_value=30, max_value=45, places=1).map(str)
    | st.floats(min_value=30, max_value=45)
    | st.sampled_from(["37.25", "1e2", "NaN", "", "37,5"]),
    "symptoms": st.lists(st.sampled_from([*Symptom.values, "sneezing"]), max_size=4),
    "symptoms_other": st.text(max_size=120),
    "health_status": st.sampled_from([*HealthStatus.values, "dead"]),
    "whereabouts": st.sampled_from(Whereabouts.values),
    "province_code": st.sampled_from(["370000", "110000", "", "37", "３７0000"]) | st.text(max_size=8),
    "city_code": st.sampled_from(["370100", "110100", "", "370000"]) | st.text(max_size=8),
    "risk_area_14d": st.booleans(),
    "case_contact": st.booleans(),
    "note": st.text(max_size=600),
    "student": st.integers(),
    "source": st.sampled_from(["self", "proxy"]),
}
#: Well-formed answers with plausible (sometimes invalid) values: they exercise the rules.
ANSWERS = st.fixed_dictionaries(
    {
        "slot": st.just("morning"),
        "temperature": st.decimals(min_value="35.0", max_value="41.0", places=1).map(str),
    },
    optional={
        name: PLAUSIBLE[name] for name in PLAUSIBLE if name not in {"slot", "date", "temperature", "student", "source"}
    },
)
#: Anything at all: junk in any field, server-set fields, bodies that are not objects.
FUZZ = st.fixed_dictionaries(
    {}, optional={name: st.one_of(strategy, JUNK) for name, strategy in PLAUSIBLE.items()}
) | JUNK.filter(lambda value: not isinstance(value, dict))
#: Valid answers with varied content: new reports, edits and identical retries.
VALID = st.fixed_dictionaries(
    {
        "slot": st.just("morning"),
        "temperature": st.decimals(min_value="35.0", max_value="41.0", places=1).map(str),
    },
    optional={
        "client_id": st.uuids().map(str),
        "symptoms": st.lists(st.sampled_from([s for s in Symptom.values if s != "other"]), max_size=3),
        "health_status": st.sampled_from(HealthStatus.values),
        "risk_area_14d": st.booleans(),
        "case_contact": st.booleans(),
        "note": st.text(max_size=50),
    },
)
PAYLOADS = st.one_of(VALID, ANSWERS, FUZZ)


def _assert_error_shape(body) -> None:
    assert set(body) == {"errors"}
    assert body["errors"]
    for field, errors in body["errors"].items():
        assert isinstance(field, str) and errors
        for error in errors:
            assert set(error) == {"code", "message"}
            assert error["code"] and isinstance(error["code"], str)


@hypothesis_settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=PAYLOADS)
def test_any_input_gives_a_report_or_field_codes_never_a_500(world, slots, morning, settings, payload):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"checkin": None, "api": None}}
    student = world["A"].student
    response = client_for(world["A"].student_user).post("/api/v1/reports/", payload, format="json")

    event(f"HTTP {response.status_code}")
    assert response.status_code in (200, 201, 400, 409), (response.status_code, response.content)
    body = response.json()
    if response.status_code >= 400:
        _assert_error_shape(body)
    else:
        report = DailyReport.objects.get(pk=body["id"])
        assert report.student_id == student.pk
        assert report.source == "self"
        assert body["temperature"] == float(report.temperature)
    # One report per slot, whatever came before.
    assert DailyReport.objects.filter(student=student).count() <= 2
