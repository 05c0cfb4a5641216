"""Mobile authentication: JWT pair, rotating refresh with blacklist, and django-axes'
lockout on username + IP answered as 429 ``locked_out``."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from students.models import Student
from students.selectors import user_with_student
from tests.reports.checkin import codes
from tests.world import PASSWORD

TOKEN = "/api/v1/auth/token/"
REFRESH = "/api/v1/auth/token/refresh/"


def _login(username: str, password: str, *, ip: str = "10.0.0.1", client: APIClient | None = None):
    client = client or APIClient()
    return client.post(TOKEN, {"username": username, "password": password}, format="json", REMOTE_ADDR=ip)


def test_token_pair_then_bearer_access(world):
    response = _login("stu_A", PASSWORD)
    assert response.status_code == 200
    tokens = response.json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    me = client.get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["student"]["student_number"] == world["A"].student.student_number


def test_refresh_rotates_and_the_old_refresh_token_is_blacklisted(world):
    tokens = _login("stu_A", PASSWORD).json()
    client = APIClient()
    rotated = client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert rotated.status_code == 200
    assert set(rotated.json()) == {"access", "refresh"}
    assert rotated.json()["refresh"] != tokens["refresh"]

    reused = client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert reused.status_code == 401
    assert codes(reused, "detail") == ["token_not_valid"]


def test_wrong_password_is_401_until_the_lockout_then_429(world, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = _login("stu_A", "wrong")
        assert response.status_code == 401
        assert codes(response, "detail") == ["no_active_account"]

    locked = _login("stu_A", "wrong")
    assert locked.status_code == 429
    assert codes(locked, "detail") == ["locked_out"]
    # Even the right password is refused while locked out, with the same answer.
    right = _login("stu_A", PASSWORD)
    assert right.status_code == 429
    assert codes(right, "detail") == ["locked_out"]


def test_lockout_is_per_username_and_ip_never_the_ip_alone(world, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login("stu_A", "wrong", ip="10.0.0.1")
    assert _login("stu_A", PASSWORD, ip="10.0.0.1").status_code == 429
    # Another student behind the same campus NAT address logs in normally...
    assert _login("stu_B", PASSWORD, ip="10.0.0.1").status_code == 200
    # ...and so does the same student from another address.
    assert _login("stu_A", PASSWORD, ip="10.9.9.9").status_code == 200


def test_lockout_message_is_english_on_request(world, settings):
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = _login("stu_A", "wrong", client=client)
    assert response.status_code == 429
    message = response.json()["errors"]["detail"][0]["message"]
    assert message.isascii() and "try again later" in message.lower()


def test_login_is_throttled_per_username_and_ip(world, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login": "2/min"},
    }
    settings.AXES_FAILURE_LIMIT = 100
    assert _login("stu_A", "wrong").status_code == 401
    assert _login("stu_A", "wrong").status_code == 401
    throttled = _login("stu_A", "wrong")
    assert throttled.status_code == 429
    assert codes(throttled, "detail") == ["throttled"]
    assert _login("stu_B", PASSWORD).status_code == 200  # same address, other username


def test_overlong_username_is_a_400_not_a_server_error(world):
    # found by schemathesis on PostgreSQL: axes' failure log holds 255 characters
    response = _login("u" * 300, "whatever")
    assert response.status_code == 400
    assert codes(response, "username") == ["max_length"]
    assert _login("stu_A", PASSWORD).status_code == 200


def _bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


def test_a_deactivated_account_is_refused_with_a_valid_token(world):
    client = _bearer(world["A"].student_user)
    world["A"].student_user.is_active = False
    world["A"].student_user.save(update_fields=["is_active"])
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert codes(response, "detail") == ["user_inactive"]


def test_a_deleted_account_is_refused_with_a_valid_token(world):
    user = get_user_model().objects.create_user("gone", password=PASSWORD)
    client = _bearer(user)
    user.delete()
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert codes(response, "detail") == ["user_not_found"]


def test_bearer_user_comes_with_the_student_as_the_orm_reads_them(world):
    """user_with_student builds the same instances a queryset would (every column,
    converted: dates, datetimes, booleans), with the two sides of the link cached."""
    user = user_with_student(world["A"].student_user.pk)
    expected_user = get_user_model().objects.get(pk=world["A"].student_user.pk)
    expected_student = Student.objects.get(user=expected_user)
    fields = [f.attname for f in get_user_model()._meta.concrete_fields]
    assert [getattr(user, f) for f in fields] == [getattr(expected_user, f) for f in fields]
    fields = [f.attname for f in Student._meta.concrete_fields]
    with CaptureQueriesContext(connection) as captured:
        student = user.student
        assert student.user is user
    assert captured.captured_queries == []
    assert [getattr(student, f) for f in fields] == [getattr(expected_student, f) for f in fields]
    staff = user_with_student(world.uni_admin.pk)
    with CaptureQueriesContext(connection) as captured, pytest.raises(Student.DoesNotExist):
        staff.student  # noqa: B018 - known to have none, without asking again
    assert captured.captured_queries == []
    assert user_with_student(10**9) is None


def test_staff_token_reaches_staff_endpoints_and_is_no_student(world):
    client = _bearer(world["A"].counsellor)
    assert client.get("/api/v1/me/").json()["student"] is None
    response = client.post("/api/v1/reports/", {"slot": "morning", "temperature": "36.5"}, format="json")
    assert response.status_code == 403
    assert codes(response, "detail") == ["not_a_student"]
