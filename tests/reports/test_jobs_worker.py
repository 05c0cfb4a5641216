"""A real Celery worker (not eager mode) runs a reminder round and the nightly roll-up:
on the filesystem broker with SQLite, on Redis with PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from notifications.models import Delivery, DeliveryStatus, Notification
from reports.reminder_models import Anchor, ReminderRun, ReminderStep, StepKind
from reports.rollup_models import RollupRun
from reports.tasks import reminders_dispatch_task, rollup_compile_day_task
from tests.reports.checkin import local, make_slots, submit, today
from tests.reports.test_reminders import give_logins
from tests.reports.test_rollup import recompute, stored

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(request):
    try:
        return request.getfixturevalue("celery_worker")
    except pytest.FixtureLookupError:
        pytest.skip("needs the tests.celery_utils plugin (make test loads it)")


def finished_rollups(on: dt.date) -> int:
    return RollupRun.objects.filter(date=on, finished_at__isnull=False).count()


def test_worker_runs_a_reminder_round_and_the_rollup_once(worker, world):
    slots = make_slots(world)
    give_logins(world)
    morning = slots["A"]["morning"]
    ReminderStep.objects.create(slot=morning, kind=StepKind.STUDENTS_ALL, anchor=Anchor.OPENS)
    ReminderStep.objects.create(slot=morning, kind=StepKind.COUNSELLORS, anchor=Anchor.DUE)
    for student in world["A"].students[:2] + world["B"].students[:3]:
        submit(student, when=local(8, 0))

    at = local(9, 5).isoformat()
    reminders_dispatch_task.delay(now=at)
    reminders_dispatch_task.delay(now=at)  # a second beat's copy
    worker.wait_for(
        lambda: ReminderRun.objects.filter(finished_at__isnull=False).count() == 2,
        what="the reminder round",
    )
    rollup_compile_day_task.delay(date=today().isoformat())
    rollup_compile_day_task.delay(date=today().isoformat())  # a rerun
    # the solo worker takes tasks in order: once a later roll-up is done, so is the rest
    worker.wait_for(lambda: finished_rollups(today()) == 2, what="the roll-up")
    rollup_compile_day_task.delay(date=(today() - dt.timedelta(days=1)).isoformat())
    worker.wait_for(lambda: finished_rollups(today() - dt.timedelta(days=1)) == 2, what="the sentinel roll-up")

    students_told = Notification.objects.filter(kind="reminder").values_list("recipient_id", flat=True)
    assert sorted(students_told) == sorted(s.user_id for s in world["A"].students)
    staff = Notification.objects.filter(kind="missing_list")
    assert [(n.recipient.username, "4 人" in n.title) for n in staff] == [("counsellor_A", True)]
    assert ReminderRun.objects.count() == 2
    for code in ("morning", "noon"):
        assert stored(today(), code) == recompute(today(), code)


def test_worker_sends_each_campus_round_in_a_task_of_its_own(worker, world):
    slots = make_slots(world)
    give_logins(world)
    steps = [
        ReminderStep.objects.create(slot=slots[key]["morning"], kind=StepKind.STUDENTS_ALL, anchor=Anchor.OPENS)
        for key in ("A", "B")
    ]

    reminders_dispatch_task.delay(now=local(6, 1).isoformat())
    worker.wait_for(
        lambda: ReminderRun.objects.filter(finished_at__isnull=False).count() == 2, what="both campuses' rounds"
    )

    # Each round, once committed, has its deliveries dispatched without waiting for beat
    # (no beat runs here).
    delivered = Delivery.objects.filter(notification__kind="reminder", status=DeliveryStatus.SENT)
    worker.wait_for(lambda: delivered.count() == Notification.objects.filter(kind="reminder").count(), what="sent")
    # the solo worker takes tasks in order: once a later task is done, so are the dispatches
    rollup_compile_day_task.delay(date=today().isoformat())
    worker.wait_for(lambda: finished_rollups(today()) == 2, what="the sentinel roll-up")

    assert sorted(ReminderRun.objects.values_list("step_id", flat=True)) == sorted(s.pk for s in steps)
    students_told = Notification.objects.filter(kind="reminder").values_list("recipient_id", flat=True)
    assert sorted(students_told) == sorted(s.user_id for key in ("A", "B") for s in world[key].students)
    assert delivered.count() == len(students_told) > 0
    assert worker.log().count("reports.reminder_step[") >= 2, worker.log()
    assert "notifications.deliveries_dispatch[" in worker.log()


def test_worker_builds_a_background_ledger_for_its_owner(worker, world, client, settings):
    from django.urls import reverse

    from config.jobs import JobStatus
    from reports.export_models import ExportRecord, LedgerJob
    from reports.tasks import ledger_jobs_dispatch_task
    from tests.reports.test_ledger_jobs import text_of

    make_slots(world)
    a, b = world["A"], world["B"]
    settings.TONGXIN = {**settings.TONGXIN, "LEDGER_SYNC_MAX_STUDENTS": 5}
    client.force_login(a.coordinator)
    response = client.get(reverse("ledgers:stay"))  # six students: over the limit
    assert response.status_code == 302
    job = LedgerJob.objects.get()
    ledger_jobs_dispatch_task.delay()  # as beat does every 5 s
    ledger_jobs_dispatch_task.delay()  # a second dispatch at once finds it claimed
    worker.wait_for(
        lambda: LedgerJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).exists(), what="the ledger job"
    )
    job.refresh_from_db()
    assert (job.status, job.error, job.row_count) == (JobStatus.DONE, "", len(a.students))
    assert ExportRecord.objects.get().username == a.coordinator.username
    downloaded = client.get(reverse("ledgers:job_download", args=[job.pk]))
    assert downloaded.status_code == 200
    text = text_of(downloaded.content)
    assert all(s.student_number in text for s in a.students)
    assert not any(s.student_number in text for s in b.students)


def test_worker_imports_a_background_roster_upload_as_its_uploader(worker, world, client, settings, tmp_path):
    from django.urls import reverse

    from students.models import RosterJob, Student
    from students.tasks import roster_jobs_dispatch_task
    from tests.fixtures.roster import student_row, write_csv

    settings.TONGXIN = {**settings.TONGXIN, "ROSTER_SYNC_MAX_BYTES": 100}
    admin = world["A"].college_admin
    client.force_login(admin)
    path = write_csv(tmp_path / "r.csv", [student_row(world, seq=n) for n in range(1, 4)])
    with open(path, "rb") as handle:
        response = client.post(reverse("admin:students_student_roster_import"), {"file": handle})
    assert response.status_code == 302
    roster_jobs_dispatch_task.delay()  # as beat does every 5 s
    roster_jobs_dispatch_task.delay()  # a second dispatch at once finds it claimed
    worker.wait_for(lambda: RosterJob.objects.filter(status__in=["done", "failed"]).exists(), what="the roster job")
    job = RosterJob.objects.get()
    assert (job.status, job.error, job.result["created"], job.data) == ("done", "", 3, None)
    assert Student.history.filter(student_number__startswith="9A", history_user=admin).count() == 3
    assert "导入完成" in client.get(response["Location"]).content.decode()
