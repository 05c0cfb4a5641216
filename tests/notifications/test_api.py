"""The inbox API: my notifications only, newest first, unread filter and count, mark
read; someone else's notification does not exist (404)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from notifications.models import Notification

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.notifications.urls")]

BASE = "/api/v1/notifications/"


def inbox(user, count, *, start=0, read=False):
    now = timezone.now()
    return Notification.objects.bulk_create(
        Notification(
            recipient=user,
            kind="reminder",
            title=f"提醒 {n}",
            dedupe_key=f"k{n}",
            created_at=now - dt.timedelta(minutes=n),
            read_at=now if read else None,
        )
        for n in range(start, start + count)
    )


@pytest.fixture
def api():
    def client_for(user=None):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return client_for


def test_list_shows_only_my_notifications_newest_first(api, alice, bob):
    inbox(alice, 3)
    inbox(bob, 2, start=10)

    response = api(alice).get(BASE)

    assert response.status_code == 200
    assert response.data["count"] == 3
    assert [n["title"] for n in response.data["results"]] == ["提醒 0", "提醒 1", "提醒 2"]
    first = response.data["results"][0]
    assert set(first) == {"id", "kind", "kind_display", "title", "body", "link", "created_at", "read_at", "is_read"}
    assert (first["kind_display"], first["is_read"]) == ("打卡提醒", False)


def test_list_filters_unread(api, alice):
    inbox(alice, 2)
    inbox(alice, 3, start=5, read=True)

    assert api(alice).get(BASE, {"unread": "true"}).data["count"] == 2
    assert api(alice).get(BASE, {"unread": "false"}).data["count"] == 3
    assert api(alice).get(BASE).data["count"] == 5


def test_unread_count(api, alice, bob):
    inbox(alice, 2)
    inbox(alice, 1, start=5, read=True)
    inbox(bob, 4, start=10)

    response = api(alice).get(f"{BASE}unread-count/")

    assert response.status_code == 200
    assert response.json() == {"unread": 2}


def test_read_marks_my_notification_and_keeps_the_first_read_time(api, alice):
    [note] = inbox(alice, 1)

    response = api(alice).post(f"{BASE}{note.pk}/read/")

    assert response.status_code == 200
    assert response.data["is_read"] is True
    first_read = Notification.objects.get(pk=note.pk).read_at
    assert first_read is not None
    assert api(alice).post(f"{BASE}{note.pk}/read/").status_code == 200
    assert Notification.objects.get(pk=note.pk).read_at == first_read
    assert api(alice).get(f"{BASE}unread-count/").json() == {"unread": 0}


def test_reading_someone_elses_notification_is_404_like_a_missing_one(api, alice, bob):
    [foreign] = inbox(bob, 1)

    response = api(alice).post(f"{BASE}{foreign.pk}/read/")
    missing = api(alice).post(f"{BASE}{foreign.pk + 1000}/read/")

    assert response.status_code == missing.status_code == 404
    assert response.json() == missing.json()
    assert Notification.objects.get(pk=foreign.pk).read_at is None
    assert api(alice).get(f"{BASE}{foreign.pk}/").status_code == 404


def test_huge_id_is_404_not_a_database_error(api, alice):
    assert api(alice).post(f"{BASE}{'9' * 30}/read/").status_code == 404
    assert api(alice).get(f"{BASE}{'9' * 30}/").status_code == 404


def test_read_all_marks_only_mine(api, alice, bob):
    inbox(alice, 3)
    inbox(alice, 1, start=5, read=True)
    inbox(bob, 2, start=10)

    response = api(alice).post(f"{BASE}read-all/")

    assert response.status_code == 200
    assert response.json() == {"updated": 3}
    assert Notification.objects.filter(recipient=alice, read_at__isnull=True).count() == 0
    assert Notification.objects.filter(recipient=bob, read_at__isnull=True).count() == 2


def test_anonymous_is_refused(api):
    for method, path in (("get", BASE), ("get", f"{BASE}unread-count/"), ("post", f"{BASE}read-all/")):
        assert getattr(api(), method)(path).status_code == 401


def test_session_login_works(client, alice):
    inbox(alice, 1)
    client.force_login(alice)
    assert client.get(BASE).json()["count"] == 1


def test_list_query_count_does_not_grow_with_the_inbox(api, alice):
    inbox(alice, 2)
    with CaptureQueriesContext(connection) as small:
        assert api(alice).get(BASE).status_code == 200
    inbox(alice, 40, start=2)
    with CaptureQueriesContext(connection) as large:
        assert len(api(alice).get(BASE).data["results"]) == 42

    # one page read, which holds the count while the page is not full (config.pagination)
    assert len(small.captured_queries) == len(large.captured_queries) == 1
    inbox(alice, 60, start=42)
    with CaptureQueriesContext(connection) as full:
        body = api(alice).get(BASE).data
    assert (body["count"], len(body["results"])) == (102, 50)
    assert len(full.captured_queries) == 2  # a full page: COUNT and the page


def test_unread_count_is_one_query(api, alice):
    inbox(alice, 5)
    with CaptureQueriesContext(connection) as ctx:
        api(alice).get(f"{BASE}unread-count/")
    assert len(ctx.captured_queries) == 1


def test_openapi_schema_of_the_inbox_is_valid_without_warnings(tmp_path):
    from django.core.management import call_command

    out = tmp_path / "schema.yaml"
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--urlconf", "tests.notifications.urls", "--file", str(out)
    )
    schema = out.read_text(encoding="utf-8")
    for path in ("/api/v1/notifications/{id}/read/", "/api/v1/notifications/unread-count/", "/read-all/"):
        assert path in schema


@pytest.mark.urls("config.urls")
def test_project_api_routes_the_inbox(api, alice):
    inbox(alice, 2)
    assert api(alice).get(f"{BASE}unread-count/").json() == {"unread": 2}
    assert api(alice).get(BASE).json()["count"] == 2
