"""Throttles: the check-in's rate per user, counted in a fixed window by one Redis round
trip where the cache is Redis (config.cache.RedisCache.incr_expiring), by DRF's
sliding log elsewhere (the embedded default's local-memory cache)."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from reports.models import DailyReport
from tests.reports.checkin import answer, client_for, codes

needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="the Redis counter needs REDIS_URL")


def _rate(settings, rate: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "checkin": rate},
    }


def test_check_in_rate_per_user_answers_429_with_retry_after(world, slots, morning, settings):
    _rate(settings, "3/min")
    client = client_for(world["A"].student_user)
    statuses = [client.post("/api/v1/reports/", answer(), format="json").status_code for _ in range(3)]
    assert statuses == [201, 200, 200]
    throttled = client.post("/api/v1/reports/", answer(), format="json")
    assert throttled.status_code == 429
    assert codes(throttled, "detail") == ["throttled"]
    assert 0 < int(throttled["Retry-After"]) <= 60
    # Another student's counter is their own.
    assert client_for(world["B"].student_user).post("/api/v1/reports/", answer(), format="json").status_code == 201


def test_a_bearer_tokens_first_reports_count_against_its_account(world, slots, morning, settings):
    """The app's first reports — one statement on PostgreSQL, the account read only by it
    — are counted per account like any request, and refused once over the rate."""
    _rate(settings, "2/min")
    student, classmate = world["A"].student, world["A"].classmate
    classmate.user = get_user_model().objects.create_user(username="stu_A_classmate")
    classmate.save()
    client = client_for(student.user, bearer=True)
    assert client.post("/api/v1/reports/", answer(), format="json").status_code == 201
    assert client.post("/api/v1/reports/", answer(slot="noon"), format="json").status_code == 409  # not open yet
    throttled = client.post("/api/v1/reports/", answer(), format="json")
    assert (throttled.status_code, codes(throttled, "detail")) == (429, ["throttled"])
    assert DailyReport.objects.filter(student=student).count() == 1
    assert client_for(classmate.user, bearer=True).post("/api/v1/reports/", answer(), format="json").status_code == 201


@needs_redis
def test_on_redis_a_counter_expires_with_its_window(world, slots, morning, settings):
    _rate(settings, "5/min")
    client_for(world["A"].student_user).post("/api/v1/reports/", answer(), format="json")
    redis = cache._cache.get_client(write=True)
    keys = [k for k in redis.scan_iter(match=f"*{settings.CACHES['default']['KEY_PREFIX']}*throttle_checkin*")]
    assert len(keys) == 1
    assert int(redis.get(keys[0])) == 1
    assert 0 < redis.ttl(keys[0]) <= 60


@needs_redis
def test_incr_expiring_counts_and_never_leaves_a_counter_without_expiry(settings):
    key = "incr-expiring-test"
    assert [cache.incr_expiring(key, 30) for _ in range(3)] == [1, 2, 3]
    redis = cache._cache.get_client(write=True)
    assert 0 < redis.ttl(cache.make_and_validate_key(key)) <= 30
