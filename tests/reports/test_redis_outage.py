"""Redis stopped during submissions: every acknowledged report is stored, nothing on
the request path waits for the broker, and the reminders missed meanwhile go out
once each when the dispatch runs again.

A private redis-server is started for the test (so stopping it disturbs nobody) and
used as the cache, as in production; it is shut down half-way through the
submissions."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from unittest import mock

import pytest
from celery.app.task import Task

from reports.models import DailyReport
from reports.reminder_models import Anchor, ReminderRun, ReminderStep, StepKind
from reports.reminders import reminders_dispatch
from tests.reports.checkin import answer, client_for, local, make_slots
from tests.reports.test_reminders import give_logins

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of the test's own, on a free port, that can be stopped and restarted."""

    def __init__(self, binary: str):
        self.binary = binary
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@pytest.fixture
def private_redis(settings):
    """The private server, used as the cache (as REDIS_URL is in production)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis(binary)
    redis.start()
    original = settings.CACHES
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{redis.port}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    yield redis
    settings.CACHES = original  # before the server goes: other fixtures clear the cache
    redis.stop()


def test_submissions_survive_redis_stopping_and_reminders_catch_up(world, private_redis, time_machine):
    from django.core.cache import cache

    cache.set("probe", 1)  # the cache really is the private Redis
    assert cache.get("probe") == 1
    slots = make_slots(world)
    give_logins(world)
    ReminderStep.objects.create(
        slot=slots["A"]["morning"], kind=StepKind.STUDENTS_MISSING, anchor=Anchor.DUE, offset_minutes=-30
    )
    ReminderStep.objects.create(slot=slots["A"]["morning"], kind=StepKind.COUNSELLORS, anchor=Anchor.DUE)
    time_machine.move_to(local(8, 0), tick=False)
    students = world["A"].students + world["B"].students
    acknowledged = []
    publish = mock.patch.object(Task, "apply_async", side_effect=ConnectionError("broker unreachable"))
    with publish as apply_async:
        for index, student in enumerate(students):
            if index == len(students) // 2:
                private_redis.stop()  # Redis goes away half-way
            response = client_for(student.user).post("/api/v1/reports/", answer(), format="json")
            assert response.status_code == 201, response.content
            acknowledged.append(response.json()["id"])
        assert apply_async.call_count == 0  # nothing on the request path touched the broker
    assert not private_redis.running
    assert sorted(DailyReport.objects.values_list("id", flat=True)) == sorted(acknowledged)
    assert len(set(acknowledged)) == len(students)

    # While Redis was down, beat could not publish the 08:30 and 09:00 dispatches.  When
    # it is back, the next dispatch sends both steps — once each, however often it runs.
    private_redis.start()
    late_comer = world["A"].students[0]
    DailyReport.objects.filter(student=late_comer).delete()
    runs = reminders_dispatch(now=local(9, 20))
    assert sorted(r.step.kind for r in runs) == sorted([StepKind.STUDENTS_MISSING, StepKind.COUNSELLORS])
    assert reminders_dispatch(now=local(9, 21)) == []
    assert ReminderRun.objects.count() == 2
    from notifications.models import Notification

    assert list(Notification.objects.filter(kind="reminder").values_list("recipient_id", flat=True)) == [
        late_comer.user_id
    ]
    assert list(Notification.objects.filter(kind="missing_list").values_list("recipient__username", flat=True)) == [
        "counsellor_A"
    ]
