"""``python -m bench.run``: the benchmark suite (``make bench``).  See bench/README.md.

The parent process orchestrates and never imports Django: it starts PostgreSQL and
Redis when they are not running, creates the databases (a migrated template, cloned
for each university), then runs every step in a child process
(``python -m bench.run child NAME``) against the database the step needs, so that each
child's peak memory is that step's.  It prints the table and writes
bench/results/latest.json.

Environment (all optional): ``DATABASE_URL`` (default
postgres://postgres@127.0.0.1:5432/tongxin_bench; the suite creates ``<name>``,
``<name>_template``, ``<name>_10k``, ``<name>_import*``), ``REDIS_URL`` (default
redis://127.0.0.1:6379/7, flushed at the start), ``BENCH_STUDENTS`` (100000),
``BENCH_DAYS`` (90), ``BENCH_SNAPSHOT_DAYS`` (365), ``BENCH_SMALL_STUDENTS`` (10000),
``BENCH_WRK_SECONDS`` (20), ``BENCH_WRK_CONNECTIONS`` (32), ``BENCH_GUNICORN_WORKERS``
(4), ``BENCH_GUNICORN_THREADS`` (4), ``BENCH_IE_ROWS`` (rows given to
django-import-export, default 20000, extrapolated), ``BENCH_PER_STUDENT_TASKS``
(tasks the one-task-per-student reference enqueues and times, default 20000,
extrapolated to one per student), ``BENCH_IMPORT_RUNS`` (3: runs of the CSV imports and
of the COPY, each into a fresh database; their median is the figure),
``BENCH_REMINDER_RUNS`` (3: reminder rounds at each size through the same worker; the
median round is the figure).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.core import cpu_shares, cpu_times, median_pick
from bench.report import checks_from, markdown_table, print_table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "var" / "bench"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tongxin_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/7"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------
# Services and databases (no Django here)
# ---------------------------------------------------------------------------
def ensure_services(database_url: str, redis_url: str) -> None:
    """Start the local PostgreSQL cluster and Redis when they are down (as .ci/run does)."""
    db, redis = urlsplit(database_url), urlsplit(redis_url)
    host, port = db.hostname or "127.0.0.1", str(db.port or 5432)
    if subprocess.run(["pg_isready", "-q", "-h", host, "-p", port], check=False).returncode != 0:
        log("Starting PostgreSQL")
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True)
        for _ in range(30):
            if subprocess.run(["pg_isready", "-q", "-h", host, "-p", port], check=False).returncode == 0:
                break
            time.sleep(1)
    rhost, rport = redis.hostname or "127.0.0.1", str(redis.port or 6379)
    ping = ["redis-cli", "-h", rhost, "-p", rport, "ping"]
    if subprocess.run(ping, check=False, capture_output=True).returncode != 0:
        log("Starting Redis")
        server = ["redis-server", "--daemonize", "yes", "--bind", rhost, "--port", rport]
        subprocess.run([*server, "--save", "", "--appendonly", "no"], check=True)
        for _ in range(30):
            if subprocess.run(ping, check=False, capture_output=True).returncode == 0:
                break
            time.sleep(0.2)


def flush_redis(redis_url: str) -> None:
    url = urlsplit(redis_url)
    db = (url.path or "/0").lstrip("/") or "0"
    subprocess.run(
        ["redis-cli", "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 6379), "-n", db, "FLUSHDB"],
        check=True,
        capture_output=True,
    )


class Admin:
    """CREATE / DROP DATABASE through the maintenance database."""

    def __init__(self, database_url: str) -> None:
        self.url = urlsplit(database_url)
        self.name = self.url.path.lstrip("/")

    def url_for(self, name: str) -> str:
        return urlunsplit(self.url._replace(path=f"/{name}"))

    def _execute(self, sql: str):
        import psycopg

        with psycopg.connect(self.url_for("postgres"), autocommit=True) as conn:
            return conn.execute(sql).fetchall() if sql.lstrip().upper().startswith("SELECT") else conn.execute(sql)

    def exists(self, name: str) -> bool:
        return bool(self._execute(f"SELECT 1 FROM pg_database WHERE datname = '{name}'"))

    def recreate(self, name: str, *, template: str | None = None) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))

    def drop(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def checkpoint(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url_for(name), autocommit=True) as conn:
            conn.execute("CHECKPOINT")

    def version(self) -> str:
        return self._execute("SELECT version()")[0][0]


# ---------------------------------------------------------------------------
# Children
# ---------------------------------------------------------------------------
class Runner:
    def __init__(self, *, env: dict[str, str], admin: Admin, python: str) -> None:
        self.env = env
        self.admin = admin
        self.python = python
        self.started = time.monotonic()

    def elapsed(self) -> str:
        return f"[{time.monotonic() - self.started:6.0f} s]"

    def settle(self, database: str, *, quiet: float = 0.25, limit: float = 60) -> None:
        """Let the previous step's work drain before the next is measured: a CHECKPOINT
        (so none falls inside a measurement), then up to ``limit`` seconds until the
        machine has been quiet for two seconds running — under ``quiet`` of all cores'
        time busy or waiting on the disk (``/proc/stat``; the hypervisor's steal is
        another guest's).  The 1-minute load average, the criterion before, lags the
        machine by a minute: after the submissions' wrk run (load 8) it kept every
        following step waiting its whole minute on an idle machine.  The load averages
        stay in the results."""
        try:
            self.admin.checkpoint(database)
        except Exception as exc:  # a missing database: the step itself will say so
            log(f"  checkpoint skipped: {exc}")
        deadline = time.monotonic() + limit
        quiet_seconds = 0
        while quiet_seconds < 2 and time.monotonic() < deadline:
            before = cpu_times()
            time.sleep(1)
            shares = cpu_shares(before, cpu_times())
            if shares is None:  # no /proc/stat: nothing to wait for
                return
            quiet_seconds = quiet_seconds + 1 if shares["busy"] + shares["iowait"] < quiet else 0

    def child(self, name: str, database: str, *args: str, timeout: float = 900) -> dict:
        """Run ``bench.run child NAME`` on ``database``; return its JSON (or the error)."""
        WORK.mkdir(parents=True, exist_ok=True)
        if name != "build":
            self.settle(database)
        out = WORK / f"{name}-{database}.json"
        out.unlink(missing_ok=True)
        env = {**self.env, "DATABASE_URL": self.admin.url_for(database)}
        command = [self.python, "-m", "bench.run", "child", name, "--out", str(out), *args]
        log(f"{self.elapsed()} {name} on {database} {' '.join(args)}")
        started, cpu_before = time.monotonic(), cpu_times()
        try:
            subprocess.run(command, env=env, cwd=ROOT, check=True, timeout=timeout)
            data = json.loads(out.read_text())
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
            log(f"  FAILED: {exc}")
            data = {"error": f"{type(exc).__name__}: {exc}"}
        data["wall_seconds"] = round(time.monotonic() - started, 1)
        data["cpu"] = cpu_shares(cpu_before, cpu_times())  # the whole machine's, over the step
        return data


def child_main(name: str, out: Path, options: list[str]) -> None:
    """Run one step in this (child) process and write its JSON to ``out``."""
    import django

    from bench.core import load_average, peak_rss_mb

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    baseline = peak_rss_mb()
    load_before = load_average()
    parser = argparse.ArgumentParser(prog=f"bench child {name}")
    parser.add_argument("--students", type=int, default=0)
    parser.add_argument("--days", type=int, default=0)
    parser.add_argument("--snapshot-days", type=int, default=365)
    parser.add_argument("--path", default="")
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--growth", action="store_true", help="the small university's run: the figure, no reference")
    opts = parser.parse_args(options)
    result = STEPS[name](opts)
    payload = {
        "result": result,
        "peak_rss_mb": peak_rss_mb(),
        "baseline_rss_mb": baseline,
        "load_before": load_before,
        "load_after": load_average(),
    }
    out.write_text(json.dumps(payload, indent=1, default=str))


def _yesterday():
    from django.utils import timezone

    return timezone.localdate() - dt.timedelta(days=1)


def _step_build(opts) -> dict:
    from bench.data import build

    return build(students=opts.students, days=opts.days, snapshot_days=opts.snapshot_days, log=log)


def _step_rollup(opts) -> dict:
    from bench.m_rollup import measure

    return measure(on=_yesterday())


def _step_missing(opts) -> dict:
    from bench.m_missing import measure

    return measure(on=_yesterday())


def _step_dashboard(opts) -> dict:
    from bench.m_dashboard import measure_full_day

    return measure_full_day()


def _step_submit(opts) -> dict:
    from bench.m_submit import measure

    seconds = _env_int("BENCH_WRK_GROWTH_SECONDS", 10) if opts.growth else _env_int("BENCH_WRK_SECONDS", 20)
    return measure(
        server_env=dict(os.environ),
        workdir=WORK / ("submit-small" if opts.growth else "submit"),
        seconds=seconds,
        ceiling=not opts.growth,
        connections=_env_int("BENCH_WRK_CONNECTIONS", 32),
        workers=_env_int("BENCH_GUNICORN_WORKERS", 4),
        threads=_env_int("BENCH_GUNICORN_THREADS", 4),
    )


def _step_reminders(opts) -> dict:
    from django.db import connection
    from django.utils import timezone

    from bench.core import child_pids, process_peak_rss_mb
    from bench.m_reminders import enqueue_per_student, measure_rounds, start_worker
    from students.models import Student

    WORK.mkdir(parents=True, exist_ok=True)
    worker = start_worker(env=dict(os.environ), log_path=WORK / "celery-worker.log")
    try:
        runs = _env_int("BENCH_REMINDER_RUNS", 3)
        result = measure_rounds(today=timezone.localdate(), runs=runs, worker=worker)
        pids = [worker.pid, *child_pids(worker.pid)]
        result["worker_peak_rss_mb"] = max((r for r in map(process_peak_rss_mb, pids) if r is not None), default=None)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    connection.close()
    if opts.growth:
        return result  # the small university's round: the figure for the growth only
    n = Student.objects.count()
    result["per_student"] = enqueue_per_student(n, sample=_env_int("BENCH_PER_STUDENT_TASKS", 20_000))
    return result


def _step_reminders_inprocess(opts) -> dict:
    from django.utils import timezone

    from bench.m_reminders import measure_inprocess

    return measure_inprocess(today=timezone.localdate())


def _step_ledger(opts) -> dict:
    from bench.m_ledger import measure, measure_upload

    result = measure()
    if opts.path and Path(opts.path).exists():  # the roster of measurement 5 (absent in some --only runs)
        result["upload"] = measure_upload(Path(opts.path))
    return result


def _step_import_product(opts) -> dict:
    from bench.m_import import import_product

    return import_product(Path(opts.path))


def _step_parse_calamine(opts) -> dict:
    from bench.m_import import parse_calamine

    return parse_calamine(Path(opts.path))


def _step_parse_xlsx(opts) -> dict:
    from bench.m_import import parse_xlsx

    return parse_xlsx(Path(opts.path))


def _step_copy_raw(opts) -> dict:
    from bench.m_import import copy_raw

    return copy_raw(Path(opts.path))


def _step_import_ie(opts) -> dict:
    from bench.m_import import import_ie

    return import_ie(Path(opts.path), rows=opts.rows or None)


STEPS = {
    "build": _step_build,
    "rollup": _step_rollup,
    "missing": _step_missing,
    "dashboard": _step_dashboard,
    "submit": _step_submit,
    "reminders": _step_reminders,
    "reminders_inprocess": _step_reminders_inprocess,
    "ledger": _step_ledger,
    "import_product": _step_import_product,
    "parse_xlsx": _step_parse_xlsx,
    "parse_calamine": _step_parse_calamine,
    "copy_raw": _step_copy_raw,
    "import_ie": _step_import_ie,
}
MEASUREMENTS = ("rollup", "missing", "dashboard", "submit", "reminders", "import", "ledger")


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------
def cpu_reference(loops: int = 3_000_000, repeats: int = 3) -> float:
    """Seconds of one core for a fixed pure-Python loop (best of ``repeats``): the speed
    of this machine's cores, recorded beside the figures so runs on different machines
    can be compared (the shared machines this suite runs on differ by up to 3× in speed)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        total = 0
        for i in range(loops):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def machine(admin: Admin, redis_url: str) -> dict:
    meminfo = Path("/proc/meminfo").read_text().split("\n")
    total_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line), "")
    redis = urlsplit(redis_url)
    info = subprocess.run(
        ["redis-cli", "-h", redis.hostname or "127.0.0.1", "-p", str(redis.port or 6379), "INFO", "server"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    redis_version = next((line.split(":", 1)[1].strip() for line in info.splitlines() if "redis_version" in line), "")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(total_kb / 1024 / 1024, 1),
        "postgresql": admin.version(),
        "redis": redis_version,
        "python": platform.python_version(),
        "wrk": shutil.which("wrk") is not None,
        "commit": commit.strip(),
        "started_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpu_reference_seconds": cpu_reference(),
    }


def run(args) -> int:
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    students = _env_int("BENCH_STUDENTS", 100_000)
    small = _env_int("BENCH_SMALL_STUDENTS", 10_000)
    days = _env_int("BENCH_DAYS", 90)
    snapshot_days = _env_int("BENCH_SNAPSHOT_DAYS", 365)
    ie_rows = _env_int("BENCH_IE_ROWS", 20_000)
    import_runs = max(_env_int("BENCH_IMPORT_RUNS", 3), 1)
    only = set(args.only.split(",")) if args.only else set(MEASUREMENTS)

    ensure_services(database_url, redis_url)
    flush_redis(redis_url)
    (ROOT / "var" / "staticfiles").mkdir(parents=True, exist_ok=True)  # whitenoise warns without it
    admin = Admin(database_url)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "REDIS_URL": redis_url,
        "JWT_ACCESS_MINUTES": "720",
        "TONGXIN_THROTTLE_CHECKIN": "1000000/min",
        "TONGXIN_THROTTLE_API": "1000000/min",
        "TONGXIN_THROTTLE_LOGIN": "1000000/min",
        "DJANGO_LOG_LEVEL": "WARNING",
        "DJANGO_DEBUG": "false",
    }
    runner = Runner(env=env, admin=admin, python=sys.executable)
    main, main_small, template = admin.name, f"{admin.name}_10k", f"{admin.name}_template"
    import_base = f"{admin.name}_import_base"
    results: dict = {
        "machine": machine(admin, redis_url),
        "config": {
            "students": students,
            "small_students": small,
            "days": days,
            "snapshot_days": snapshot_days,
            "database": main,
            "redis": redis_url,
        },
        "data": {},
        "measurements": {},
    }
    log(f"Tongxin benchmarks: {students:,} students, {days} days of reports, {snapshot_days} days of snapshots")
    box = results["machine"]
    log(
        f"machine: {box['nproc']} cores ({box['cpu']}; pure-Python reference loop {box['cpu_reference_seconds']} s), "
        f"{box['memory_gib']} GiB, load {box['load_at_start']}"
    )

    roster = {n: WORK / f"roster-{n}" for n in (students, small)}
    if not (args.reuse and admin.exists(main)):
        log(f"{runner.elapsed()} databases: migrate {template}")
        admin.recreate(template)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            env={**env, "DATABASE_URL": admin.url_for(template)},
            cwd=ROOT,
            check=True,
        )
        for name in (main, main_small, import_base):
            admin.recreate(name, template=template)
        common = ["--days", str(days), "--snapshot-days", str(snapshot_days)]
        results["data"]["import_base"] = runner.child("build", import_base, "--students", "300", "--days", "0")
        # The rosters (a Python process on one core, reading the import base) are written
        # while the universities are built, most of which is the database's work: nothing
        # is measured before both are done.
        WORK.mkdir(parents=True, exist_ok=True)
        sizes = ", ".join(f"{n:,}" for n in roster)
        log(f"{runner.elapsed()} rosters of {sizes} rows (bench/roster_gen.py), beside the builds")

        def write_rosters() -> None:
            for n, out in roster.items():
                subprocess.run(
                    [sys.executable, "bench/roster_gen.py", "--rows", str(n), "--out", str(out)],
                    env={**env, "DATABASE_URL": admin.url_for(import_base)},
                    cwd=ROOT,
                    check=True,
                )

        with ThreadPoolExecutor(max_workers=1) as pool:
            rosters = pool.submit(write_rosters)
            results["data"]["large"] = runner.child("build", main, "--students", str(students), *common, timeout=1200)
            results["data"]["small"] = runner.child("build", main_small, "--students", str(small), *common)
            rosters.result()
        log(f"{runner.elapsed()} rosters written")

    m = results["measurements"]
    if "rollup" in only:
        m["rollup"] = {"large": runner.child("rollup", main), "small": runner.child("rollup", main_small)}
    if "missing" in only:
        m["missing"] = {"large": runner.child("missing", main), "small": runner.child("missing", main_small)}
    if "dashboard" in only:
        m["dashboard"] = {"large": runner.child("dashboard", main), "small": runner.child("dashboard", main_small)}
    if "submit" in only:
        # The small university's first: its load settles before the figure's run.
        small_submit = runner.child("submit", main_small, "--growth")
        m["submit"] = {"large": runner.child("submit", main), "small": small_submit}
    if "reminders" in only:
        m["reminders"] = {
            "large": runner.child("reminders", main),
            "small": runner.child("reminders", main_small, "--growth"),
            "small_inprocess": runner.child("reminders_inprocess", main_small),
        }
    if "import" in only:
        m["import"] = imports(runner, import_base, roster, students, small, ie_rows, import_runs)
    if "ledger" in only:
        m["ledger"] = {"large": runner.child("ledger", main, "--path", f"{roster[students]}.csv")}

    results["machine"]["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["machine"]["seconds"] = round(time.monotonic() - runner.started, 1)
    results["checks"] = checks_from(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str))
    print_table(results)
    log(f"\nbench/results/latest.json written; {results['machine']['seconds']:.0f} s in all")
    if args.markdown:
        print(markdown_table(results))
    return 0


def median_run(runs: list[dict]) -> dict:
    """The run of median time among ``runs`` (steps' JSON; of an even number, the slower
    of the middle two), with every run's seconds in ``runs_seconds``; the first error if
    none succeeded."""
    done = [r for r in runs if "error" not in r]
    if not done:
        return runs[0]
    chosen = median_pick(done, lambda r: r["result"]["seconds"])
    return {**chosen, "runs_seconds": [r["result"]["seconds"] for r in done]}


def imports(
    runner: Runner, base: str, roster: dict[int, Path], students: int, small: int, ie_rows: int, runs: int = 1
) -> dict:
    """Each import into its own fresh copy of the small university; the CSV imports and
    the COPY — figures of a few seconds, which move by a fifth from run to run on this
    kind of machine — ``runs`` times each, their median run kept."""
    admin = runner.admin
    scratch = f"{admin.name}_import"
    out: dict = {}

    def fresh(step: str, *args: str) -> dict:
        admin.recreate(scratch, template=base)
        return runner.child(step, scratch, *args)

    def median_of(step: str, *args: str) -> dict:
        return median_run([fresh(step, *args) for _ in range(runs)])

    big, little = roster[students], roster[small]
    out["csv"] = median_of("import_product", "--path", f"{big}.csv")
    out["xlsx"] = fresh("import_product", "--path", f"{big}.xlsx")
    out["parse_xlsx"] = runner.child("parse_xlsx", base, "--path", f"{big}.xlsx")
    out["parse_calamine"] = runner.child("parse_calamine", base, "--path", f"{big}.xlsx")
    out["copy"] = median_of("copy_raw", "--path", f"{big}.csv")
    out["import_export"] = fresh("import_ie", "--path", f"{big}.csv", "--rows", str(min(ie_rows, students)))
    out["import_export"]["total_rows"] = students
    out["csv_small"] = median_of("import_product", "--path", f"{little}.csv")
    out["xlsx_small"] = fresh("import_product", "--path", f"{little}.xlsx")
    admin.drop(scratch)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child"]:
        parser = argparse.ArgumentParser(prog="bench.run child")
        parser.add_argument("name", choices=sorted(STEPS))
        parser.add_argument("--out", type=Path, required=True)
        known, rest = parser.parse_known_args(argv[1:])
        try:
            child_main(known.name, known.out, rest)
        except Exception:
            traceback.print_exc()
            return 1
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.run", description="Tongxin benchmark suite")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(MEASUREMENTS)}")
    parser.add_argument("--reuse", action="store_true", help="reuse the databases and rosters of the last run")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
