import uuid

import pytest

from tests.reports.checkin import local, make_slots


@pytest.fixture(autouse=True)
def _fresh_throttles(settings):
    """Throttle counters live in the cache — Redis in CI, shared with the Celery broker,
    so nothing is ever flushed: each test gets its own key prefix instead."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = {
        alias: {**config, "KEY_PREFIX": f"{config.get('KEY_PREFIX', '')}{prefix}"}
        for alias, config in settings.CACHES.items()
    }


@pytest.fixture
def slots(world):
    return make_slots(world)


@pytest.fixture
def morning(time_machine):
    """Today at 08:00 local, the morning slot open and not yet due; the clock stands still."""
    time_machine.move_to(local(8, 0), tick=False)
    return time_machine
