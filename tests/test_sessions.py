"""The session engine (config/sessions.py): Django's database sessions read by one raw
statement — the same answers as Django's own read for a live, an expired, an unknown
and a malformed key."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from config.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_the_project_uses_it():
    assert settings.SESSION_ENGINE == "config.sessions"


def _stored(data: dict, *, expires_in: dt.timedelta) -> str:
    store = SessionStore()
    store.update(data)
    store.create()
    Session.objects.filter(session_key=store.session_key).update(expire_date=timezone.now() + expires_in)
    return store.session_key


def test_a_live_session_loads_as_djangos_does(django_assert_num_queries):
    key = _stored({"_auth_user_id": "7", "tongxin": "同心"}, expires_in=dt.timedelta(hours=1))

    store = SessionStore(key)
    with django_assert_num_queries(1):
        data = store.load()

    assert data == DjangoStore(key).load() == {"_auth_user_id": "7", "tongxin": "同心"}
    assert store.session_key == key


@pytest.mark.parametrize("key", ["expired", "unknownkey12345678901234567890ab", "", None, "short"])
def test_no_live_session_is_empty_and_forgets_its_key(key):
    if key == "expired":
        key = _stored({"_auth_user_id": "7"}, expires_in=-dt.timedelta(seconds=1))
    store, django_store = SessionStore(key), DjangoStore(key)

    assert store.load() == django_store.load() == {}
    assert store.session_key is None and django_store.session_key is None
