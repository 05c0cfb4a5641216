"""Beyond the six measurements (informational, no target in issue 6): the two requests
that hand their work to the background (config.jobs).

7a — the whole university's 《留校学生情况统计表》 as its university admin asks for it.

- figure: ``GET /ledgers/stay/`` through Django's test client — a selection over
  ``TONGXIN["LEDGER_SYNC_MAX_STUDENTS"]``, so the request checks it, stores a background
  job (后台导出) and redirects; each timed request first forgets the job before it, so
  every one stores a new job rather than joining one;
- reference: the same ledger built in the request, as every ledger was before the
  background exports (:func:`reports.ledgers.ledger_export`: what the worker now does);
- also: the worker's build of the last job (:func:`reports.ledger_jobs.ledger_jobs_dispatch`,
  in this process), its rows and the file's size.

7b — the 100,000-row roster CSV uploaded through the admin's 导入花名册 page by the
university admin (:func:`measure_upload`): the request, which stores the file for the
background (后台导入) and redirects; its reference is measurement 5a's import of the
same file in the request, in the same run.  Nothing is imported here (each stored
job is deleted): the import itself is measurement 5.
"""

from __future__ import annotations

import time

from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bench.core import summary
from bench.data import duty_holder
from campuses.models import Role
from config.jobs import JobStatus
from reports.export_models import LedgerJob
from reports.ledger_jobs import ledger_jobs_dispatch, sync_max_students
from reports.ledgers import ledger_export


def _to_background(jobs, send, *, repeats: int) -> tuple[int, list[float]]:
    """Statements of one request, then the seconds of ``repeats`` more: ``send()`` makes
    the request (and must be answered by a redirect to the background); before each,
    the job of the one before is deleted, untimed, so every request stores a new job."""
    jobs.delete()
    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        _redirected(send())
    queries = len(captured.captured_queries)  # now: the next requests reset the log it reads
    seconds = []
    for _ in range(repeats):
        jobs.delete()
        started = time.perf_counter()
        response = send()
        seconds.append(time.perf_counter() - started)
        _redirected(response)
    return queries, seconds


def _redirected(response) -> None:
    if response.status_code != 302:
        raise RuntimeError(f"answered {response.status_code}, not a redirect to the background")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def measure(*, repeats: int = 20, builds: int = 1) -> dict:
    user = duty_holder(Role.UNIVERSITY_ADMIN)
    client = _client(user)
    url = reverse("ledgers:stay")
    jobs = LedgerJob.objects.filter(user=user)
    queries, request = _to_background(jobs, lambda: client.get(url), repeats=repeats)
    job = jobs.get()

    started = time.perf_counter()
    dispatched = ledger_jobs_dispatch()
    built_seconds = time.perf_counter() - started
    job.refresh_from_db()
    if job.status != JobStatus.DONE or dispatched["run"] != 1:
        raise RuntimeError(f"the background build ended {job.status}: {job.error}")

    sync = []
    for _ in range(max(builds, 1)):
        started = time.perf_counter()
        ledger = ledger_export(user=user, kind="stay")
        sync.append(time.perf_counter() - started)
    jobs.delete()
    return {
        "as": "university_admin",
        "students": job.students,
        "sync_max_students": sync_max_students(),
        "rows": job.row_count,
        "bytes": len(bytes(job.data)),
        "request": summary(request),
        "queries": queries,
        "background_build_seconds": round(built_seconds, 3),
        "sync_build": summary(sync),
        "sync_rows": ledger.rows,
    }


def measure_upload(path, *, repeats: int = 5) -> dict:
    """7b: the admin upload of the roster file ``path`` (see the module docstring)."""
    from pathlib import Path

    from students.models import RosterJob
    from students.roster_jobs import sync_max_bytes

    path = Path(path)
    user = duty_holder(Role.UNIVERSITY_ADMIN)
    client = _client(user)
    url = reverse("admin:students_student_roster_import")
    jobs = RosterJob.objects.filter(user=user)

    def upload():
        with open(path, "rb") as handle:
            return client.post(url, {"file": handle})

    queries, request = _to_background(jobs, upload, repeats=repeats)
    job = jobs.defer("data").get()
    stored = {"size": job.size, "status": job.status}
    jobs.delete()
    return {
        "as": "university_admin",
        "file": path.name,
        "bytes": path.stat().st_size,
        "sync_max_bytes": sync_max_bytes(),
        "stored": stored,
        "request": summary(request),
        "queries": queries,
    }
