"""The OpenAPI contract: the schema validates without warnings, the docs are served
from the app's own static files, and schemathesis finds no server error and no
response outside the schema — as a student and as a counsellor."""

from __future__ import annotations

import io

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework_simplejwt.tokens import AccessToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from config.wsgi import application
from tests.reports.checkin import local, submit, today


def test_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out), stdout=io.StringIO())
    text = out.read_text()
    for path in (
        "/api/v1/auth/token/",
        "/api/v1/auth/token/refresh/",
        "/api/v1/me/",
        "/api/v1/checkin/today/",
        "/api/v1/reports/",
        "/api/v1/reports/missing/",
        "/api/v1/reports/proxy/",
        "/api/v1/excusals/",
        "/api/v1/contacts/mark/",
        "/api/v1/notifications/",
    ):
        assert f"  {path}:" in text, path
    assert "ErrorResponse" in text


def test_the_check_in_is_documented_as_submitted():
    """POST /reports/ carries its own summary, input and answers (its view also chooses
    its authentication, which must not take the documentation's place)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/reports/"]["post"]
    assert operation["summary"] == "Submit my check-in"
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ReportInputRequest")
    assert {"200", "201"} <= set(operation["responses"])
    assert operation["security"] == [{"jwtAuth": []}, {"cookieAuth": []}]


def test_docs_are_served_from_our_static_files(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()


def test_unknown_api_url_answers_json_404(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"errors": {"detail": [{"code": "not_found", "message": "未找到。"}]}}


@pytest.fixture(scope="session")
def api_schema(django_db_setup, django_db_blocker):
    # After the test database exists: the WSGI app must never open the real one.
    with django_db_blocker.unblock():
        loaded = schemathesis.openapi.from_wsgi("/api/schema/", application)
    # Keep the suite fast: the fuzzing phase (positive and negative cases) only; the
    # exhaustive boundary "coverage" phase is for the standalone CLI run.
    loaded.config.phases.coverage.enabled = False
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def _keep_test_connection():
    """Schemathesis calls the WSGI app directly, whose end-of-request hook would close
    the test's database connection (and its transaction); Django's test client
    disconnects that hook the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_scene(_keep_test_connection, world, slots, time_machine, settings):
    """Campus A's morning slot open, a few reports, no throttling: let the fuzzer reach the rules."""
    time_machine.move_to(local(8, 30), tick=False)
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]),
    }
    a = world["A"]
    submit(a.classmate, when=local(8, 0), temperature="38.1")
    submit(a.other_class_student, when=local(8, 0))
    assert today() == local(8, 30).date()
    return world


FUZZ_SETTINGS = hypothesis_settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
CHECKS = [not_a_server_error, response_schema_conformance]


def _bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}


@pytest.mark.django_db  # fixtures load lazily: say so, or pytest-django sets up no database
@schema.parametrize()
@FUZZ_SETTINGS
def test_api_conforms_to_its_schema_as_a_student(case, fuzz_scene):
    case.call_and_validate(headers=_bearer(fuzz_scene["A"].student_user), checks=CHECKS)


@pytest.mark.django_db
@schema.parametrize()
@FUZZ_SETTINGS
def test_api_conforms_to_its_schema_as_a_counsellor(case, fuzz_scene):
    case.call_and_validate(headers=_bearer(fuzz_scene["A"].counsellor), checks=CHECKS)
