import pytest
from django.core.cache import cache

from tests.dashboard.scenario import build_day
from tests.reports.checkin import local


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    """Empty caches, and live figures never served from the cache unless a test says so."""
    settings.TONGXIN = {**settings.TONGXIN, "DASHBOARD_LIVE_SECONDS": 0}
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def at_930(time_machine):
    """Today at 09:30 local: the morning slot is open and past due; the clock stands still."""
    time_machine.move_to(local(9, 30), tick=False)
    return time_machine


@pytest.fixture
def day(world, at_930):
    return build_day(world)
