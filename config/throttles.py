"""API throttles: DRF's scoped rates (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``) on the
shared cache — Redis in production; the embedded default's local-memory cache counts
per process."""

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


class ScopedThrottle(_LiveRates, ScopedRateThrottle):
    """DRF's scoped throttle (per user, or per IP when anonymous) on the shared cache."""


class LoginRateThrottle(_LiveRates, SimpleRateThrottle):
    """Login attempts per username and IP together: one noisy client behind the campus
    NAT must not lock out the thousands of students sharing its address."""

    scope = "login"

    def get_cache_key(self, request, view):
        data = request.data if isinstance(request.data, dict) else {}
        username = str(data.get("username", ""))[:150]
        digest = hashlib.sha256(f"{username}\0{self.get_ident(request)}".encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest}
