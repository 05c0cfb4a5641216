import pytest
from django.core.cache import cache

from tests.reports.checkin import local, make_slots


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """Throttle counters live in the cache: start every test from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def slots(world):
    return make_slots(world)


@pytest.fixture
def morning(time_machine):
    """Today at 08:00 local, the morning slot open and not yet due; the clock stands still."""
    time_machine.move_to(local(8, 0), tick=False)
    return time_machine
