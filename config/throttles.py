"""API throttles: DRF's scoped rates (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``) on the
shared cache — Redis in production; the embedded default's local-memory cache counts
per process.

On Redis a rate is a fixed window counted with one round trip (``INCR`` on a key that
expires with its window, :meth:`config.cache.RedisCache.incr_expiring`); DRF's own
sliding log reads and rewrites a pickled list of timestamps, two round trips on every
request (a tenth of a check-in's CPU).  A fixed window lets at most twice the rate
through across a window's edge, which the check-in's and the login's rates allow for
(logins are also locked out by django-axes).  Other caches keep DRF's log."""

from __future__ import annotations

import hashlib
import logging

from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

logger = logging.getLogger(__name__)


class _LiveRates:
    """Read the rates at request time, so settings changes (and tests) take effect; and
    fail open when the cache is unreachable: a Redis outage must never turn a student's
    check-in into an error (logins stay guarded by django-axes, which counts failures
    in the database)."""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:  # the cache backend's connection errors differ by backend
            logger.warning("throttle cache unreachable; request allowed", exc_info=True)
            return True


class _CountedWindow(SimpleRateThrottle):
    """A fixed window counted by the cache when it can count (see the module);
    otherwise DRF's sliding log."""

    window_ends: float | None = None

    def allow_request(self, request, view):
        count = getattr(self.cache, "incr_expiring", None)
        if self.rate is None or count is None:
            return super().allow_request(request, view)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends = (window + 1) * self.duration
        return count(f"{self.key}:{window}", self.duration) <= self.num_requests

    def wait(self):
        if self.window_ends is None:
            return super().wait()
        return max(0.0, self.window_ends - self.timer())


class ScopedThrottle(_LiveRates, ScopedRateThrottle, _CountedWindow):
    """DRF's scoped throttle (per user, or per IP when anonymous) on the shared cache."""


class LoginRateThrottle(_LiveRates, _CountedWindow):
    """Login attempts per username and IP together: one noisy client behind the campus
    NAT must not lock out the thousands of students sharing its address."""

    scope = "login"

    def get_cache_key(self, request, view):
        data = request.data if isinstance(request.data, dict) else {}
        username = str(data.get("username", ""))[:150]
        digest = hashlib.sha256(f"{username}\0{self.get_ident(request)}".encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest}
