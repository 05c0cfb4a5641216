"""The API tests share the check-in fixtures of tests/reports (fresh throttle counters,
the world's slots, the clock at 08:00)."""

from tests.reports.conftest import _fresh_throttles, morning, slots  # noqa: F401
