import pytest

from tests.world import build_world


@pytest.fixture
def world(db):
    """The persona world: see tests/world.py."""
    return build_world()
