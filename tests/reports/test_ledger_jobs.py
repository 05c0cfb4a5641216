"""Background ledgers (后台导出, reports.ledger_jobs): a student list over the limit is
queued instead of built in the request (which never touches the broker), built as its
owner by beat's dispatch, downloaded by its owner alone; bad requests are refused before
anything is stored; a double request joins the job; a dead worker or a failing build
loses nothing; old files expire."""

from __future__ import annotations

import datetime as dt
import io
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from campuses.models import Assignment, Role
from config.jobs import JobStatus
from reports import ledger_jobs
from reports.export_models import ExportKind, ExportRecord, LedgerJob
from reports.ledger_jobs import ledger_job_run, ledger_jobs_dispatch, ledger_jobs_sweep
from tests.reports.checkin import make_slots
from tests.world import STAFF_PERSONAS

pytestmark = pytest.mark.django_db

JOBS_URL = "/admin/reports/ledgerjob/"


@pytest.fixture
def slots(world):
    return make_slots(world)


@pytest.fixture
def small_limit(settings):
    """Campus A's six students are more than the limit: its lists go to the background."""
    settings.TONGXIN = {**settings.TONGXIN, "LEDGER_SYNC_MAX_STUDENTS": 5}


def ask(client, user, name: str, **params):
    client.force_login(user)
    return client.get(reverse(f"ledgers:{name}"), params)


def sheets(data: bytes) -> dict[str, list[list]]:
    book = load_workbook(io.BytesIO(bytes(data)))
    return {sheet.title: [[c.value for c in row] for row in sheet.iter_rows()] for sheet in book.worksheets}


def text_of(data: bytes) -> str:
    return "\n".join(str(v) for rows in sheets(data).values() for row in rows for v in row if v is not None)


def test_a_campus_list_over_the_limit_is_built_in_the_background_as_the_sync_one_would_be(
    world, client, slots, settings, small_limit, broker_down
):
    a, b = world["A"], world["B"]
    response = ask(client, a.coordinator, "stay")

    assert response.status_code == 302 and response["Location"] == JOBS_URL
    job = LedgerJob.objects.get()
    assert (job.user, job.kind, job.status, job.students) == (a.coordinator, ExportKind.STAY, "queued", 6)
    assert not ExportRecord.objects.exists()  # recorded when built, not when asked
    page = client.get(JOBS_URL)
    assert "已转入后台生成" in page.content.decode() and 'http-equiv="refresh"' in page.content.decode()

    assert ledger_jobs_dispatch()["run"] == 1
    assert ledger_job_run(job_id=job.pk) is None and ledger_jobs_dispatch()["run"] == 0  # nothing left to build
    downloaded = client.get(reverse("ledgers:job_download", args=[job.pk]))
    assert downloaded.status_code == 200
    assert downloaded["Content-Type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert "attachment" in downloaded["Content-Disposition"] and downloaded["Cache-Control"] == "no-store"
    assert ExportRecord.objects.get().row_count == LedgerJob.objects.get().row_count == len(a.students)

    settings.TONGXIN = {**settings.TONGXIN, "LEDGER_SYNC_MAX_STUDENTS": 100}
    direct = ask(client, a.coordinator, "stay")
    assert direct.status_code == 200 and not direct.has_header("Location")
    assert sheets(downloaded.content) == sheets(direct.content)
    text = text_of(downloaded.content)
    assert all(s.student_number in text for s in a.students)
    for name in (b.campus.name, b.college.name, *(s.student_number for s in b.students)):
        assert name not in text
    assert "refresh" not in client.get(JOBS_URL).content.decode()  # nothing pending: no reload


def test_under_the_limit_the_file_comes_at_once_and_background_can_be_asked(world, client, slots, broker_down):
    a = world["A"]
    assert ask(client, a.counsellor, "missing").status_code == 200
    assert not LedgerJob.objects.exists()

    response = ask(client, a.counsellor, "missing", background="1")
    assert response.status_code == 302
    job = LedgerJob.objects.get()
    assert job.parameters == {"date": timezone.localdate().isoformat(), "slot": "morning", "unit": "", "unit_name": ""}
    assert f"{job.parameters['date']}；晨检；我的全部管理范围" in client.get(JOBS_URL).content.decode()
    ask(client, a.counsellor, "abnormal", background="1", unit=f"school_class:{a.classes[0].pk}")
    assert f"；全天；{a.classes[0].name}</td>" in client.get(JOBS_URL).content.decode()


def test_the_roll_up_workbook_is_never_queued(world, client, slots, small_limit, broker_down):
    assert ask(client, world.uni_admin, "rollup").status_code == 200
    assert not LedgerJob.objects.exists()


def test_asking_twice_joins_the_job_that_is_queued_or_running(world, client, slots, small_limit, broker_down):
    a = world["A"]
    for _ in range(3):
        assert ask(client, a.coordinator, "stay").status_code == 302
    job = LedgerJob.objects.get()
    LedgerJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    response = ask(client, a.coordinator, "stay")
    assert LedgerJob.objects.count() == 1
    assert "正在后台生成" in client.get(response["Location"]).content.decode()
    # Another day, another unit, or another person is another job.
    ask(client, a.coordinator, "stay", date=(timezone.localdate() - dt.timedelta(days=1)).isoformat())
    ask(client, a.coordinator, "stay", unit=f"campus:{a.campus.pk}")
    ask(client, world.uni_admin, "stay")
    assert LedgerJob.objects.count() == 4
    # Once finished, asking again builds afresh.
    ledger_job_run(job_id=LedgerJob.objects.filter(user=world.uni_admin).get().pk)
    ask(client, world.uni_admin, "stay")
    assert LedgerJob.objects.filter(user=world.uni_admin).count() == 2


@pytest.mark.parametrize(
    ("persona", "name", "params", "status"),
    [
        ("coordinator", "stay", {"date": "2026-13-01"}, 400),
        ("coordinator", "stay", {"date": "2999-01-01"}, 400),
        ("coordinator", "missing", {"slot": "midnight"}, 400),
        ("coordinator", "stay", {"unit": "campus:x"}, 400),
        ("coordinator", "stay", {"unit": "campus:B"}, 404),  # the other campus
        ("monitor", "stay", {}, 403),
        ("logistics", "missing", {}, 403),
        ("logistics", "abnormal", {}, 403),
    ],
)
def test_a_bad_or_refused_request_stores_no_job(
    world, client, slots, small_limit, broker_down, persona, name, params, status
):
    a = world["A"]
    if params.get("unit") == "campus:B":
        params = {"unit": f"campus:{world['B'].campus.pk}"}
    response = ask(client, getattr(a, persona), name, background="1", **params)
    assert response.status_code == status
    assert not LedgerJob.objects.exists()


def test_only_the_owner_downloads_a_job_and_only_while_allowed(world, client, slots, small_limit, broker_down):
    a, b = world["A"], world["B"]
    ask(client, a.coordinator, "stay")
    job = LedgerJob.objects.get()
    url = reverse("ledgers:job_download", args=[job.pk])
    client.force_login(a.coordinator)
    assert client.get(url).status_code == 409  # not built yet
    job = ledger_job_run(job_id=job.pk)
    assert client.get(url).status_code == 200 and job.filename.endswith(".xlsx")

    others = [
        world.uni_admin,
        world.nobody,
        b.coordinator,
        *(getattr(a, p) for p in STAFF_PERSONAS if p != "coordinator"),
    ]
    for user in others:
        client.force_login(user)
        assert client.get(url).status_code == 404, user.username
        assert job.filename not in client.get(JOBS_URL).content.decode()
    client.logout()
    assert client.get(url).status_code == 302  # to the log-in page

    Assignment.objects.filter(user=a.coordinator).update(
        role=Role.CLASS_MONITOR, campus=None, school_class=a.classes[0]
    )
    client.force_login(a.coordinator)
    assert client.get(url).status_code == 403  # the role that asked for it is gone


def test_the_jobs_page_lists_only_the_users_own_jobs(world, client, slots, small_limit, broker_down):
    a, b = world["A"], world["B"]
    ask(client, a.coordinator, "stay")
    ask(client, b.coordinator, "stay", background="1")
    mine, theirs = LedgerJob.objects.get(user=a.coordinator), LedgerJob.objects.get(user=b.coordinator)
    ledger_job_run(job_id=mine.pk)
    ledger_job_run(job_id=theirs.pk)
    client.force_login(a.coordinator)
    page = client.get(JOBS_URL).content.decode()
    assert reverse("ledgers:job_download", args=[mine.pk]) in page
    assert reverse("ledgers:job_download", args=[theirs.pk]) not in page
    client.force_login(world.uni_admin)  # sees every student, not other people's files
    page = client.get(JOBS_URL).content.decode()
    assert "ledger-job-download" not in page
    assert client.get(f"{JOBS_URL}{mine.pk}/change/").status_code in (302, 404)


def test_the_ledger_page_offers_the_background_for_student_lists_only(world, client, slots):
    client.force_login(world["A"].coordinator)
    page = client.get("/admin/reports/ledgerdownload/").content.decode()
    for kind in ("stay", "missing", "abnormal"):
        assert f'id="background-{kind}"' in page
    assert 'id="background-rollup"' not in page and JOBS_URL in page


def test_the_build_runs_as_the_owner_is_now(world, client, slots, small_limit, broker_down):
    a = world["A"]
    ask(client, a.coordinator, "stay", unit=f"college:{a.college.pk}")
    ask(client, a.college_admin, "missing", background="1")
    by_coordinator, by_college_admin = LedgerJob.objects.order_by("pk")
    # Before the worker gets to them: the coordinator left the campus, the college admin
    # is now a class monitor (who may not have contact details for the whole college).
    Assignment.objects.filter(user=a.coordinator).delete()
    Assignment.objects.filter(user=a.college_admin).update(role=Role.LOGISTICS_OFFICER, college=None, campus=a.campus)
    assert ledger_job_run(job_id=by_coordinator.pk).status == JobStatus.FAILED
    assert ledger_job_run(job_id=by_college_admin.pk).status == JobStatus.FAILED
    by_coordinator.refresh_from_db()
    by_college_admin.refresh_from_db()
    assert by_coordinator.error == "单位不存在或不在您的管理范围内" and by_coordinator.data is None
    assert "可以查看未报名单" in by_college_admin.error and by_college_admin.data is None  # the builder's refusal
    assert not ExportRecord.objects.exists()
    client.force_login(a.college_admin)
    assert by_college_admin.error in client.get(JOBS_URL).content.decode()
    ask(client, a.college_admin, "stay", background="1")  # logistics may have this one
    a.college_admin.is_active = False
    a.college_admin.save()
    deactivated = ledger_job_run(job_id=LedgerJob.objects.latest("pk").pk)
    assert (deactivated.status, deactivated.error) == (JobStatus.FAILED, "申请人的账号已停用。")
    assert not ExportRecord.objects.exists()


def test_an_unexpected_failure_is_retried_then_given_up(world, client, slots, small_limit, broker_down, settings):
    ask(client, world["A"].coordinator, "stay")
    job = LedgerJob.objects.get()
    with mock.patch.object(ledger_jobs, "ledger_build", side_effect=RuntimeError("disk full")):
        for attempt in (1, 2):
            assert ledger_job_run(job_id=job.pk).status == JobStatus.QUEUED
            job.refresh_from_db()
            assert job.attempts == attempt and "disk full" in job.error
        assert ledger_job_run(job_id=job.pk).status == JobStatus.FAILED
    job.refresh_from_db()
    assert job.attempts == 3 and "多次生成失败" in job.error and not ExportRecord.objects.exists()
    assert ledger_job_run(job_id=job.pk) is None


def test_one_dispatch_builds_every_queued_job_and_leaves_a_claimed_one(world, client, slots, small_limit):
    a, b = world["A"], world["B"]
    for user in (a.coordinator, b.coordinator, world.uni_admin):
        ask(client, user, "stay", background="1")
    first, second, third = LedgerJob.objects.order_by("pk")
    LedgerJob.objects.filter(pk=second.pk).update(status=JobStatus.RUNNING, started_at=timezone.now())
    assert ledger_jobs_dispatch(budget=dt.timedelta(0))["run"] == 0  # no time: the next dispatch builds them
    assert ledger_jobs_dispatch() == {"put_back": 0, "given_up": 0, "expired": 0, "run": 2}
    statuses = dict(LedgerJob.objects.values_list("pk", "status"))
    assert statuses == {first.pk: "done", second.pk: "running", third.pk: "done"}


def test_a_failing_build_waits_for_the_next_dispatch(world, client, slots, small_limit):
    ask(client, world["A"].coordinator, "stay")
    with mock.patch.object(ledger_jobs, "ledger_build", side_effect=RuntimeError("disk full")):
        assert ledger_jobs_dispatch()["run"] == 1
    assert LedgerJob.objects.get().attempts == 1  # tried once, not three times in a row
    assert ledger_jobs_dispatch()["run"] == 1 and LedgerJob.objects.get().status == JobStatus.DONE


def test_the_sweep_puts_back_a_dead_workers_job_gives_up_at_the_limit_and_expires_files(
    world, client, slots, small_limit, broker_down
):
    a, b = world["A"], world["B"]
    for user in (a.coordinator, b.coordinator, world.uni_admin):
        ask(client, user, "stay", background="1")
    lost, hopeless, done = LedgerJob.objects.order_by("pk")
    now = timezone.now()
    long_ago = now - dt.timedelta(hours=1)
    LedgerJob.objects.filter(pk=lost.pk).update(status=JobStatus.RUNNING, started_at=long_ago, attempts=1)
    LedgerJob.objects.filter(pk=hopeless.pk).update(status=JobStatus.RUNNING, started_at=long_ago, attempts=3)
    ledger_job_run(job_id=done.pk)

    assert ledger_jobs_sweep(now=now) == {"put_back": 1, "given_up": 1, "expired": 0}
    lost.refresh_from_db()
    hopeless.refresh_from_db()
    assert lost.status == JobStatus.QUEUED and hopeless.status == JobStatus.FAILED
    assert "超时" in hopeless.error
    assert ledger_job_run(job_id=lost.pk).status == JobStatus.DONE

    in_four_days = now + dt.timedelta(hours=73)
    assert ledger_jobs_sweep(now=in_four_days)["expired"] == 2
    done.refresh_from_db()
    assert done.status == JobStatus.EXPIRED and done.data is None
    client.force_login(world.uni_admin)
    assert client.get(reverse("ledgers:job_download", args=[done.pk])).status_code == 409


def test_the_dispatch_is_on_beats_schedule(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["ledger-jobs-dispatch"]
    assert entry["task"] == "reports.ledger_jobs_dispatch" and entry["schedule"] == 5.0
    from reports.tasks import ledger_jobs_dispatch_task

    assert ledger_jobs_dispatch_task.name == entry["task"] and entry["options"]["expires"] < entry["schedule"]


def test_the_background_pages_speak_english_when_asked(world, client, slots, small_limit, settings):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = ask(client, world["A"].coordinator, "stay")
    page = client.get(response["Location"]).content.decode()
    assert "being built in the background" in page and "Background exports" in page
    assert "已转入后台生成" not in page


def test_the_background_dispatches_have_a_queue_of_their_own_that_the_procfiles_worker_reads(settings):
    from pathlib import Path

    from reports.tasks import ledger_jobs_dispatch_task
    from students.tasks import roster_jobs_dispatch_task

    for task in (ledger_jobs_dispatch_task, roster_jobs_dispatch_task):
        assert settings.CELERY_TASK_ROUTES[task.name] == {"queue": settings.BACKGROUND_QUEUE}
    worker = next(
        line for line in (Path(settings.BASE_DIR) / "Procfile").read_text().splitlines() if line.startswith("worker:")
    )
    assert f"--queues celery,{settings.BACKGROUND_QUEUE}" in worker
