"""Measurement 1: check-in submissions through ``POST /api/v1/reports/`` under gunicorn
(gthread) on 127.0.0.1, driven by wrk for a bounded time, every request a different
student with a pre-issued JWT access token.

- figure: acknowledged submissions per second (answers 201/200), latency percentiles
  as wrk measures them, errors (socket errors and any other status), and whether every
  acknowledged report is stored (the ids in the answers are looked up afterwards);
- reference: the ceiling — ``/bench/ceiling/`` on the same server (bench.ceiling),
  which verifies the same token and stores the same row with one raw-SQL upsert.

Both post to an ``evening`` slot open all day on every campus (bench.data), so the
benchmark can run at any hour; the ceiling writes tomorrow's row, the product today's,
so both insert.  The slot and its rows are removed afterwards.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from bench.core import child_pids, process_peak_rss_mb
from bench.data import BENCH_SLOT, bench_slot_setup, bench_slot_teardown
from reports.models import DailyReport
from students.models import EnrolmentStatus, Student

LUA = Path(__file__).with_name("wrk_submit.lua")
PRODUCT_PATH = "/api/v1/reports/"
CEILING_PATH = "/bench/ceiling/"


def write_tokens(path: Path, limit: int | None = None) -> int:
    """One access token per enrolled student with a login, in id order."""
    students = Student.objects.filter(
        enrolment_status=EnrolmentStatus.ENROLLED, user__isnull=False, user__is_active=True
    ).order_by("pk")
    user_ids = list(students.values_list("user_id", flat=True))[:limit]
    users = {}
    for start in range(0, len(user_ids), 10_000):  # a statement takes at most 65,535 parameters
        users.update(get_user_model().objects.only("id", "is_active").in_bulk(user_ids[start : start + 10_000]))
    with open(path, "w", encoding="ascii") as handle:
        for user_id in user_ids:
            handle.write(f"{AccessToken.for_user(users[user_id])}\n")
    return len(user_ids)


def body(index: int, run: int) -> str:
    """The JSON body wrk_submit.lua sends for token ``index`` in run ``run``."""
    return json.dumps(
        {
            "slot": BENCH_SLOT,
            "temperature": "36.5",
            "whereabouts": "on_campus",
            "client_id": f"00000000-0000-4000-8{run:03d}-{index:012d}",
        }
    )


def probe_queries(token: str, index: int) -> dict:
    """SQL statements of one submission and of one ceiling request, in this process."""
    client = Client()
    out = {}
    for run, (name, path) in enumerate((("product", PRODUCT_PATH), ("ceiling", CEILING_PATH + "?offset=3")), 8):
        reset_queries()  # the request resets the log too: start both from empty
        with CaptureQueriesContext(connection) as captured:
            response = client.post(
                path, data=body(index, run), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
            )
        if response.status_code not in (200, 201):
            raise RuntimeError(f"{path} answered {response.status_code}: {response.content[:300]!r}")
        out[name] = len(captured.captured_queries)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(*, env: dict, workers: int, threads: int, port: int, log_path: Path) -> subprocess.Popen:
    """gunicorn (gthread) with the benchmark settings; returns once it answers."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        "gthread",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--log-level",
        "warning",
        "--timeout",
        "120",
    ]
    server_env = {**env, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=server_env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/checkin/today/", timeout=2)
        except urllib.error.HTTPError:
            return process  # 401: the app answers
        except OSError:
            time.sleep(0.2)
            continue
        return process
    process.kill()
    raise RuntimeError("gunicorn did not answer within 60 s")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_wrk(
    *,
    port: int,
    path: str,
    tokens: Path,
    first: int,
    seconds: float,
    connections: int,
    threads: int,
    out: Path,
    run: int,
) -> dict:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",  # wrk takes whole seconds
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}",
        "--",
        str(tokens),
        str(first),
        path,
        str(threads),
        str(run),
    ]
    done = subprocess.run(command, env={**os.environ, "BENCH_WRK_OUT": str(out)}, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")
    result = json.loads(out.read_text())
    result["seconds"] = result["duration_us"] / 1e6
    ok = sum(n for code, n in result["statuses"].items() if code in ("200", "201"))
    result["acknowledged"] = ok
    result["per_second"] = ok / result["seconds"] if result["seconds"] else 0.0
    socket_errors = sum(v for k, v in result["errors"].items() if k != "status")
    refused = sum(n for code, n in result["statuses"].items() if code not in ("200", "201"))
    result["error_count"] = socket_errors + refused
    return result


def _stored(day) -> int:
    return DailyReport.objects.filter(slot__code=BENCH_SLOT, date=day).count()


def _found(ids: list[int]) -> int:
    found = 0
    for start in range(0, len(ids), 10_000):
        found += DailyReport.objects.filter(pk__in=ids[start : start + 10_000]).count()
    return found


def measure(
    *,
    server_env: dict,
    workdir: Path,
    seconds: float = 20,
    connections: int = 32,
    wrk_threads: int = 2,
    workers: int = 4,
    threads: int = 4,
    warmup_seconds: float = 3,
    ceiling: bool = True,
) -> dict:
    """The product's run and — unless ``ceiling`` is false (the growth run on the small
    university, which only needs the product's figure) — the ceiling's, one after the
    other on the same server."""
    workdir.mkdir(parents=True, exist_ok=True)
    bench_slot_setup()
    tokens_path = workdir / "tokens.txt"
    started = time.perf_counter()
    n_tokens = write_tokens(tokens_path)
    mint_seconds = time.perf_counter() - started
    last_token = tokens_path.read_text().splitlines()[-1]
    queries = probe_queries(last_token, n_tokens - 1)
    connection.close()  # gunicorn's workers open their own

    port = free_port()
    server = start_server(
        env=server_env, workers=workers, threads=threads, port=port, log_path=workdir / "gunicorn.log"
    )
    today = timezone.localdate()
    runs = {}
    try:
        common = {"port": port, "tokens": tokens_path, "connections": connections, "threads": wrk_threads}
        # Warm-up on both paths with students of the second half (the timed runs start at 0).
        warm = {"first": n_tokens // 2, "seconds": warmup_seconds, **common}
        warmed = run_wrk(path=PRODUCT_PATH, out=workdir / "w1.json", run=2, **warm)
        # The timed run must not reach the students the warm-up reported for (their
        # requests would be edits, not new reports): on a small university and a fast
        # machine it is cut to what 80 % of the first half of the tokens lasts.  Each wrk
        # thread takes every `wrk_threads`-th token and one thread may send nearly all the
        # requests, so a run of N requests can reach token N × wrk_threads; rounded down.
        seconds = max(1, round(seconds))  # wrk takes whole seconds
        if warmed["per_second"] > 0:
            reach = wrk_threads * warmed["per_second"]  # tokens a second, at worst
            seconds = max(1, min(seconds, int(0.8 * (n_tokens // 2) / reach)))
        if ceiling:
            run_wrk(path=CEILING_PATH + "?offset=2", out=workdir / "w2.json", run=3, **warm)
        before = _stored(today)
        runs["product"] = run_wrk(
            path=PRODUCT_PATH, first=0, seconds=seconds, out=workdir / "product.json", run=0, **common
        )
        time.sleep(1)  # let requests in flight when wrk stopped finish
        runs["product"]["stored"] = _stored(today) - before
        if ceiling:
            before = _stored(today + dt.timedelta(days=1))
            runs["ceiling"] = run_wrk(
                path=CEILING_PATH + "?offset=1", first=0, seconds=seconds, out=workdir / "ceiling.json", run=1, **common
            )
            time.sleep(1)
            runs["ceiling"]["stored"] = _stored(today + dt.timedelta(days=1)) - before
        worker_rss = [process_peak_rss_mb(pid) for pid in child_pids(server.pid)]
    finally:
        stop_server(server)
    for run in runs.values():
        ids = [int(i) for i in run.pop("ids")]
        run["acknowledged_ids"] = len(ids)
        run["unique_ids"] = len(set(ids))
        run["acknowledged_found"] = _found(sorted(set(ids)))  # distinct acknowledged reports in the table
        run["in_flight_at_stop"] = run["stored"] - run["acknowledged"]
    removed = bench_slot_teardown()
    return {
        "tokens": n_tokens,
        "mint_seconds": round(mint_seconds, 1),
        "server": {"workers": workers, "threads": threads, "worker_class": "gthread"},
        "wrk": {"seconds": seconds, "connections": connections, "threads": wrk_threads},
        "queries_per_request": queries,
        **runs,
        "server_worker_peak_rss_mb": max((r for r in worker_rss if r is not None), default=None),
        "rows_removed_after": removed,
    }
