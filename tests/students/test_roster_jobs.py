"""Roster uploads imported in the background (后台导入, students.roster_jobs): an upload
over the limit is stored, not imported in the request (which never touches the
broker); beat's dispatch imports it as the uploader — their scope, their name in the
history, the problems in their language — drops the file and keeps the result for the
uploader alone; a failing import is retried, then given up, and loses the file."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from config.jobs import JobStatus
from students import roster_jobs
from students.models import RosterJob, Student
from students.roster_jobs import roster_jobs_dispatch
from tests.fixtures.roster import student_row, write_csv

pytestmark = pytest.mark.django_db

IMPORT_URL = "admin:students_student_roster_import"


@pytest.fixture(autouse=True)
def small_limit(settings):
    """Any test file is "large": it goes to the background."""
    settings.TONGXIN = {**settings.TONGXIN, "ROSTER_SYNC_MAX_BYTES": 100}


def upload(client, user, path, **data):
    client.force_login(user)
    with open(path, "rb") as handle:
        return client.post(reverse(IMPORT_URL), {"file": handle, **data})


def test_a_large_upload_is_imported_in_the_background_as_its_uploader(world, client, tmp_path, broker_down):
    admin = world["A"].college_admin
    rows = [student_row(world, seq=n) for n in range(1, 4)]
    response = upload(client, admin, write_csv(tmp_path / "新生.csv", rows))

    job = RosterJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{reverse(IMPORT_URL)}?job={job.pk}"
    assert (job.user, job.status, job.filename, job.data is not None) == (admin, "queued", "新生.csv", True)
    assert not Student.objects.filter(student_number__startswith="9A").exists()  # not in the request
    page = client.get(response["Location"]).content.decode()
    assert "已转入后台导入" in page and 'http-equiv="refresh"' in page and 'data-status="queued"' in page

    assert roster_jobs_dispatch()["run"] == 1
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.data is None  # the file (ID numbers, phones) is gone
    assert job.result["created"] == 3 and job.result["error_count"] == 0
    assert Student.history.filter(student_number="9A000001").get().history_user == admin
    page = client.get(response["Location"]).content.decode()
    assert 'id="roster-summary"' in page and "导入完成" in page and "refresh" not in page
    recent = client.get(reverse(IMPORT_URL)).content.decode()  # the job is found again from the page
    assert f'href="?job={job.pk}"' in recent and "新生.csv" in recent
    client.force_login(world["B"].college_admin)
    assert 'id="roster-recent-jobs"' not in client.get(reverse(IMPORT_URL)).content.decode()


def test_problems_of_a_background_upload_are_listed_and_nothing_is_imported(world, client, tmp_path):
    rows = [student_row(world, seq=1), student_row(world, seq=2, 性别="?"), student_row(world, "B", seq=3)]
    response = upload(client, world["A"].college_admin, write_csv(tmp_path / "r.csv", rows))
    roster_jobs_dispatch()

    body = client.get(response["Location"]).content.decode()
    assert 'id="roster-errors"' in body and "未导入任何数据" in body
    assert '<td class="row">3</td>' in body and '<td class="column">性别</td>' in body
    assert '<td class="row">4</td>' in body and '<td class="column">学院</td>' in body
    assert not Student.objects.filter(student_number__in=[r["学号"] for r in rows]).exists()


def test_a_background_dry_run_saves_nothing(world, client, tmp_path):
    path = write_csv(tmp_path / "r.csv", [student_row(world, seq=1)])
    response = upload(client, world["A"].college_admin, path, dry_run="on")
    roster_jobs_dispatch()
    assert "校验通过（演练，未保存）" in client.get(response["Location"]).content.decode()
    assert not Student.objects.filter(student_number="9A000001").exists()


def test_the_problems_come_in_the_uploaders_language(world, client, tmp_path):
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "en"
    rows = [student_row(world, seq=1, 性别="?")]
    response = upload(client, world["A"].college_admin, write_csv(tmp_path / "r.csv", rows))
    from django.utils import translation

    with translation.override("zh-hans"):  # the worker's own language is the default, Chinese
        roster_jobs_dispatch()
    assert RosterJob.objects.get().language == "en"
    page = client.get(response["Location"]).content.decode()
    assert "Gender should be 男 or 女" in page and "Background import" in page and "后台导入" not in page


def test_only_the_uploader_sees_the_job_and_roles_without_import_duty_store_nothing(world, client, tmp_path):
    a, b = world["A"], world["B"]
    response = upload(client, a.college_admin, write_csv(tmp_path / "r.csv", [student_row(world, seq=1)]))
    for user in (b.college_admin, a.coordinator, world.uni_admin):
        client.force_login(user)
        assert client.get(response["Location"]).status_code == 404, user.username
    client.force_login(a.college_admin)
    assert client.get(f"{reverse(IMPORT_URL)}?job=x").status_code == 404
    for user in (a.counsellor, a.monitor, a.logistics):
        assert upload(client, user, write_csv(tmp_path / "r.csv", [student_row(world, seq=2)])).status_code == 403
    assert RosterJob.objects.count() == 1


def test_the_import_runs_with_the_uploaders_scope_at_that_moment(world, client, tmp_path):
    from campuses.models import Assignment, Role

    a = world["A"]
    upload(client, a.college_admin, write_csv(tmp_path / "r.csv", [student_row(world, seq=1)]))
    Assignment.objects.filter(user=a.college_admin).update(role=Role.COUNSELLOR, college=None, grade=a.grade)
    roster_jobs_dispatch()
    job = RosterJob.objects.get()
    assert job.status == JobStatus.FAILED and "导入花名册需要" in job.error and job.data is None
    assert not Student.objects.filter(student_number="9A000001").exists()


def test_a_failing_import_is_retried_by_the_next_dispatch_then_given_up_without_its_file(world, client, tmp_path):
    upload(client, world["A"].college_admin, write_csv(tmp_path / "r.csv", [student_row(world, seq=1)]))
    with mock.patch.object(roster_jobs, "roster_import", side_effect=RuntimeError("database gone")):
        for attempt in (1, 2):
            assert roster_jobs_dispatch()["run"] == 1  # once a dispatch, not three times in a row
            job = RosterJob.objects.get()
            assert (job.status, job.attempts, job.data is not None) == ("queued", attempt, True)
        roster_jobs_dispatch()
    job = RosterJob.objects.get()
    assert job.status == JobStatus.FAILED and "多次导入失败" in job.error and job.data is None


def test_a_job_whose_worker_died_is_put_back_then_given_up(world, client, tmp_path):
    upload(client, world["A"].college_admin, write_csv(tmp_path / "r.csv", [student_row(world, seq=1)]))
    long_ago = timezone.now() - dt.timedelta(hours=2)
    RosterJob.objects.update(status=JobStatus.RUNNING, started_at=long_ago, attempts=1)
    assert roster_jobs_dispatch()["put_back"] == 1 and RosterJob.objects.get().status == JobStatus.DONE
    upload(client, world["A"].college_admin, write_csv(tmp_path / "r.csv", [student_row(world, seq=2)]))
    RosterJob.objects.filter(status=JobStatus.QUEUED).update(status=JobStatus.RUNNING, started_at=long_ago, attempts=3)
    assert roster_jobs_dispatch()["given_up"] == 1
    hopeless = RosterJob.objects.latest("pk")
    assert hopeless.status == JobStatus.FAILED and "超时" in hopeless.error and hopeless.data is None


def test_a_small_upload_is_still_imported_at_once(world, client, tmp_path, settings):
    settings.TONGXIN = {**settings.TONGXIN, "ROSTER_SYNC_MAX_BYTES": 10_000_000}
    response = upload(client, world["A"].college_admin, write_csv(tmp_path / "r.csv", [student_row(world, seq=1)]))
    assert response.status_code == 200 and "导入完成" in response.content.decode()
    assert not RosterJob.objects.exists() and Student.objects.filter(student_number="9A000001").exists()


def test_the_dispatch_is_on_beats_schedule(settings):
    from students.tasks import roster_jobs_dispatch_task

    entry = settings.CELERY_BEAT_SCHEDULE["roster-jobs-dispatch"]
    assert entry["task"] == roster_jobs_dispatch_task.name and entry["options"]["expires"] < entry["schedule"]


@pytest.mark.parametrize("background", [False, True])
def test_the_page_shows_the_first_problems_and_counts_the_rest_now_or_in_the_background(
    world, client, tmp_path, settings, monkeypatch, background
):
    monkeypatch.setattr(roster_jobs, "KEPT_ERRORS", 2)
    if not background:
        settings.TONGXIN = {**settings.TONGXIN, "ROSTER_SYNC_MAX_BYTES": 10_000_000}
    rows = [student_row(world, seq=n, 性别="?") for n in range(1, 4)]
    response = upload(client, world["A"].college_admin, write_csv(tmp_path / "r.csv", rows))
    if background:
        roster_jobs_dispatch()
        response = client.get(response["Location"])
    body = response.content.decode()
    assert body.count('<td class="column">性别</td>') == 2 and "另有 1 个问题未列出" in body
    assert "文件中有 3 个问题（涉及 3 行）" in body


def test_a_result_expires_with_the_problems_that_quote_the_file(world, client, tmp_path):
    rows = [student_row(world, seq=1, 身份证号="123")]
    response = upload(client, world["A"].college_admin, write_csv(tmp_path / "r.csv", rows))
    roster_jobs_dispatch()
    assert "123" in str(RosterJob.objects.get().result)
    assert roster_jobs_dispatch(now=timezone.now() + dt.timedelta(hours=73))["expired"] == 1
    job = RosterJob.objects.get()
    assert (job.status, job.result, job.data) == (JobStatus.EXPIRED, None, None)
    page = client.get(response["Location"]).content.decode()
    assert "结果已过期" in page and 'id="roster-errors"' not in page
