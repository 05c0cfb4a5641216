import pytest

from tests.world import build_world

pytest_plugins = ["tests.celery_utils"]


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """PBKDF2 at production strength costs ~0.3 s a user; tests make dozens."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db):
    """The persona world: see tests/world.py."""
    return build_world()
