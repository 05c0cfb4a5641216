import pytest
from django.conf import settings
from django.utils import translation

from tests.world import build_world

pytest_plugins = ["tests.celery_utils"]


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """PBKDF2 at production strength costs ~0.3 s a user; tests make dozens."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _default_language():
    """Every test starts in the default language: a request in English (a cookie, a
    header) leaves English active in the thread, which would leak into the next test's
    direct service calls."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def broker_down(monkeypatch):
    """Nothing may be published (the request paths that only write rows for beat-driven
    tasks must not talk to the broker): publishing fails the test."""
    from celery.app.task import Task

    from config.celery_app import app

    def published(*args, **kwargs):
        raise AssertionError("the request path published to the broker")

    monkeypatch.setattr(Task, "apply_async", published)
    monkeypatch.setattr(app, "send_task", published)


@pytest.fixture
def world(db):
    """The persona world: see tests/world.py."""
    return build_world()
