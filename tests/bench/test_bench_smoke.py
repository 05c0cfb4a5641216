"""Smoke test of the benchmark suite (bench/, ``make bench``): every measurement runs at a
tiny size on the test's database, and its results go through the table code, so the
benchmark cannot rot between full runs.  The figures mean nothing at this size; the
test checks that each measurement runs, that its JSON has the expected shape and that
its figures are numbers.

What needs more than the test database is skipped with the reason: the wrk + gunicorn
load of measurement 1 and the raw COPY of measurement 5 need PostgreSQL (and wrk),
django-import-export lives in the benchmark's own virtualenv (.venv-bench) only.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from bench import data, m_dashboard, m_import, m_ledger, m_missing, m_reminders, m_rollup, m_submit
from bench.report import checks_from, markdown_table
from reports.models import CheckinSlot, DailyReport
from reports.rollup_models import RollupSnapshot
from students.models import Student

pytestmark = pytest.mark.django_db(transaction=True)

STUDENTS = 150
DAYS = 5


@pytest.fixture
def university():
    """150 students, 5 days of reports (3 generated + 2 repeated on PostgreSQL), 8 days
    of snapshots: the benchmark's own data path at a tiny size."""
    return data.build(students=STUDENTS, days=DAYS, snapshot_days=8, template_days=3, log=lambda _m: None)


def _yesterday() -> dt.date:
    return timezone.localdate() - dt.timedelta(days=1)


def _numbers(*values) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _rows(name: str, large: dict, small: dict | None = None, prefix: str = "") -> list[dict]:
    """The table rows a measurement's result gives (as bench.run would assemble it)."""
    part = {"large": {"result": large}}
    if small is not None:
        part["small"] = {"result": small}
    results = {"config": {"students": STUDENTS, "small_students": STUDENTS}, "measurements": {name: part}}
    results["checks"] = checks_from(results)
    assert markdown_table(results).startswith("| # |")
    return [c for c in results["checks"] if c["id"].startswith(prefix)]


def _assert_checked(rows: list[dict]) -> None:
    assert rows
    for row in rows:
        assert set(row) >= {"id", "measurement", "figure", "reference_figure", "ratio", "target", "met"}
        assert _numbers(row["figure"]), row
        assert row["met"] in (True, False, None)


def test_data_has_history_and_a_year_of_snapshot_shape(university):
    assert Student.objects.count() == STUDENTS
    assert university["reports"] == DailyReport.objects.count() > STUDENTS * DAYS * 0.8
    oldest = DailyReport.objects.order_by("date").values_list("date", flat=True).first()
    assert oldest == timezone.localdate() - dt.timedelta(days=DAYS)
    assert RollupSnapshot.objects.filter(date=_yesterday()).exists()
    if connection.vendor == "postgresql":
        assert university["reports_repeated"] > 0 and university["snapshots_repeated"] > 0


def test_rollup_measurement(university):
    result = m_rollup.measure(on=_yesterday(), repeats=1, naive_sample=3)
    assert result["hand_sql_matches_rollup"], result["hand_sql_mismatched_classes"]
    assert _numbers(result["rollup"]["median_ms"], result["hand_sql"]["median_ms"], result["rollup_queries"])
    assert result["naive"]["sample_classes"] == 3 and result["naive"]["queries_per_class"] > 5
    _assert_checked(_rows("rollup", result, result, "2"))


def test_missing_list_measurement(university):
    result = m_missing.measure(on=_yesterday(), repeats=2)
    assert set(result["levels"]) == {"school_class", "college", "campus"}
    for level in result["levels"].values():
        assert _numbers(level["api"]["p95_ms"], level["bare_sql"]["p95_ms"], level["queries"], level["missing"])
        assert level["bare_sql_statements"] >= 1
    _assert_checked(_rows("missing", result, result, "3"))


def test_stay_ledger_measurement(university, settings):
    """The whole university's 留校学生情况统计表 (here 150 students, over a lowered limit):
    each timed request stores a job and redirects; the worker's build and the old
    synchronous one hold the same rows."""
    from reports.export_models import ExportRecord, LedgerJob
    from students.models import EnrolmentStatus, Whereabouts

    settings.TONGXIN = {**settings.TONGXIN, "LEDGER_SYNC_MAX_STUDENTS": 100}
    result = m_ledger.measure(repeats=2)
    staying = Student.objects.filter(whereabouts=Whereabouts.ON_CAMPUS, enrolment_status=EnrolmentStatus.ENROLLED)
    assert result["rows"] == result["sync_rows"] == staying.count() > 0
    assert result["students"] > result["sync_max_students"] == 100
    assert result["request"]["runs"] == 2 and result["bytes"] > 0 and result["queries"] > 0
    assert not LedgerJob.objects.exists() and ExportRecord.objects.filter(kind="stay").count() == 2  # build + sync
    rows = _rows("ledger", result, prefix="7")
    assert [r["id"] for r in rows] == ["7a"] and rows[0]["met"] is None
    assert rows[0]["reference_figure"] == result["sync_build"]["median_ms"]
    _assert_checked(rows)


def test_dashboard_measurement(university):
    """The pages as at 23:00 of yesterday, whatever the hour: "today" is then the
    data's last complete day of reports, and the past day the one before it."""
    result = m_dashboard.measure_full_day(repeats=2)
    assert set(result["pages"]) == {f"{lvl}/{day}" for lvl in ("university", "campus", "school_class")
                                    for day in ("past", "live")}  # fmt: skip
    assert result["today"] == _yesterday().isoformat()
    assert result["past_day"] == (_yesterday() - dt.timedelta(days=1)).isoformat()
    assert result["measured_as_at"].startswith(f"{_yesterday().isoformat()}T23:00")
    for page in result["pages"].values():
        assert _numbers(page["page"]["p95_ms"], page["raw_read"]["median_ms"], page["queries"])
        assert page["queries"] > 0
    rows = _rows("dashboard", result, result, prefix="4")
    assert all(r["note"].endswith(f"at {_yesterday().isoformat()}T23:00") for r in rows if r["id"] <= "4f"), rows
    assert [r["id"] for r in rows if "growth" in r["measurement"]] == ["4m"]
    _assert_checked(rows)


def test_submission_probe_and_ceiling(university, settings, tmp_path):
    """One submission and one ceiling request in this process (statuses, queries)."""
    settings.ROOT_URLCONF = "bench.urls"
    data.bench_slot_setup()
    tokens = tmp_path / "tokens.txt"
    assert m_submit.write_tokens(tokens, limit=5) == 5
    queries = m_submit.probe_queries(tokens.read_text().split()[0], 0)
    # The ceiling's one upsert; the product's first report, on PostgreSQL one statement
    # with the account's checks (report_submit_direct), elsewhere the account, the probe
    # and the insert with its history row (and their savepoints).
    assert queries["ceiling"] == 1
    if connection.vendor == "postgresql":
        assert queries["product"] == 1
    else:
        assert queries["product"] > 3
    assert DailyReport.objects.filter(slot__code=data.BENCH_SLOT).count() == 2
    assert data.bench_slot_teardown() == 2
    assert not CheckinSlot.objects.filter(code=data.BENCH_SLOT).exists()


def _server_env() -> dict[str, str]:
    """The environment of a gunicorn serving the test database."""
    url = urlsplit(os.environ["DATABASE_URL"])
    name = connection.settings_dict["NAME"]
    return {
        **os.environ,
        "DATABASE_URL": urlunsplit(url._replace(path=f"/{name}")),
        "PYTHONPATH": str(settings.BASE_DIR),
        "JWT_ACCESS_MINUTES": "60",
        "TONGXIN_THROTTLE_CHECKIN": "100000/min",
    }


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_submission_load_under_gunicorn(university, settings, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the wrk + gunicorn load needs PostgreSQL: SQLite serialises the servers' concurrent writes")
    settings.ROOT_URLCONF = "bench.urls"  # the in-process probe; the server gets bench.settings
    load = {"server_env": _server_env(), "seconds": 1, "connections": 4, "workers": 1, "threads": 2}
    result = m_submit.measure(workdir=tmp_path / "large", warmup_seconds=1, **load)
    for run in (result["product"], result["ceiling"]):
        assert _numbers(run["per_second"], run["latency_us"]["p99"], run["error_count"])
        assert run["acknowledged"] > 0 and run["acknowledged_found"] == run["unique_ids"]
    assert not CheckinSlot.objects.filter(code=data.BENCH_SLOT).exists()
    # The growth run on the small university: the product only.
    small = m_submit.measure(workdir=tmp_path / "small", warmup_seconds=1, ceiling=False, **load)
    assert "ceiling" not in small and small["product"]["acknowledged"] > 0
    assert not CheckinSlot.objects.filter(code=data.BENCH_SLOT).exists()
    rows = _rows("submit", result, small, prefix="1")
    # The table keeps four significant figures (97.31 /s, 412.5 /s): the small run's rate, as rounded.
    assert rows[-1]["id"] == "1f" and rows[-1]["reference_figure"] == pytest.approx(
        small["product"]["per_second"], rel=1e-3
    )
    _assert_checked(rows)


@pytest.mark.celery_worker
def test_reminder_round_through_a_real_worker(university, celery_worker):
    today = timezone.localdate()
    # Two rounds through the same worker: the second forgets the first and reminds the same students.
    result = m_reminders.measure_rounds(today=today, runs=2, timeout=60, worker=celery_worker.process)
    assert result["notifications"] == result["expected_students"] == result["delivered"] > 0
    assert len(result["runs_done_seconds"]) == 2 and result["done_seconds"] == max(result["runs_done_seconds"])
    assert result["runs_complete"] == 2  # both rounds, not only the median one, reminded everyone expected
    result["per_student"] = per = m_reminders.enqueue_per_student(40, sample=20)
    assert per["purged"] >= 20 and per["timed_tasks"] == 20 and per["tasks"] == 40
    assert per["enqueue_seconds"] == pytest.approx(2 * per["timed_seconds"], abs=0.002)  # extrapolated to 40
    assert _numbers(result["done_seconds"], result["enqueue_seconds"], result["per_student"]["enqueue_seconds"])
    rows = _rows("reminders", result, result, prefix="6")
    assert rows[-1]["id"] == "6d" and rows[-1]["figure"] == 1.0  # the same round as both sizes
    _assert_checked(rows)
    again = m_reminders.measure_inprocess(today=today)
    assert again["recipients"] == result["expected_students"] and again["queries"] > 0


def test_repeated_reminder_rounds_report_the_median_round_and_the_spread():
    def round_(seconds, reminded):
        return {"done_seconds": seconds, "notifications": reminded, "expected_students": 3, "delivered": reminded}

    chosen = m_reminders.median_round([round_(3.0, 1), round_(1.0, 2), round_(2.0, 3)])
    assert chosen == {**round_(2.0, 3), "runs_done_seconds": [3.0, 1.0, 2.0], "runs_complete": 1}
    assert m_reminders.median_round([round_(1.0, 1), round_(4.0, 2)])["done_seconds"] == 4.0  # even: the slower
    reminded = {"notifications": 10, "expected_students": 10, "delivered": 10, "tasks_enqueued": 2, "runs_complete": 3}
    large = {"done_seconds": 20.0, "enqueue_seconds": 0.01, "runs_done_seconds": [25.0, 20.0, 18.0], **reminded}
    large["per_student"] = {"tasks": 100, "enqueue_seconds": 1.0}
    small = {"done_seconds": 2.5, "enqueue_seconds": 0.01, "runs_done_seconds": [2.5, 4.0, 1.5], **reminded}
    results = {
        "config": {"students": 100, "small_students": 10},
        "measurements": {"reminders": {"large": {"result": large}, "small": {"result": small}}},
    }
    rows = {c["id"]: c for c in checks_from(results)}
    assert rows["6a"]["note"] == "10 reminded; median of 3 runs, 18–25 s"
    assert rows["6d"]["figure"] == 8 and rows["6d"]["note"].endswith("; median of 3 runs, 1.5–4 s")
    assert rows["6c"]["met"] and rows["6c"]["note"] == (
        "3 of 3 rounds complete at 100 students; 3 of 3 rounds complete at 10 students"
    )
    # A result of a single round (no runs: an older results file) is judged by its own counts.
    del results["measurements"]["reminders"]["small"]
    del large["runs_done_seconds"], large["runs_complete"]
    single = {c["id"]: c for c in checks_from(results)}["6c"]
    assert single["met"] and single["note"] == "1 of 1 rounds complete at 100 students"
    large["delivered"] = 9
    assert not {c["id"]: c for c in checks_from(results)}["6c"]["met"]


def test_a_reminder_round_that_reminded_too_few_misses_6c_even_when_it_is_not_the_median():
    def round_(seconds, reminded):
        counts = {"notifications": reminded, "expected_students": 10, "delivered": reminded, "tasks_enqueued": 2}
        return {
            "done_seconds": seconds,
            "enqueue_seconds": 0.01,
            **counts,
            "per_student": {"tasks": 100, "enqueue_seconds": 1.0},
        }

    def table(large_rounds, small_rounds):
        large, small = m_reminders.median_round(large_rounds), m_reminders.median_round(small_rounds)
        results = {
            "config": {"students": 100, "small_students": 10},
            "measurements": {"reminders": {"large": {"result": large}, "small": {"result": small}}},
        }
        return {c["id"]: c for c in checks_from(results)}

    whole = [round_(2.0, 10), round_(1.0, 10), round_(3.0, 10)]
    assert table(whole, whole)["6c"]["met"]
    # The slowest large round reminded 4 of 10: the median (2.0 s) is complete, the measurement is not.
    short = table([round_(2.0, 10), round_(1.0, 10), round_(3.0, 4)], whole)["6c"]
    assert short["figure"] == 10 and not short["met"]
    assert short["note"] == "2 of 3 rounds complete at 100 students; 3 of 3 rounds complete at 10 students"
    # A short round at the small size misses it as well (the growth row compares those rounds).
    assert not table(whole, [round_(0.5, 10), round_(0.2, 9), round_(0.9, 10)])["6c"]["met"]


@pytest.fixture
def roster(university, tmp_path) -> Path:
    """A 40-row roster of new students as CSV and XLSX (bench/roster_gen.py's rows)."""
    from openpyxl import Workbook

    from bench.roster_gen import rows
    from students.roster import HEADERS

    data_rows = list(rows(40))
    base = tmp_path / "roster"
    with open(f"{base}.csv", "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        writer.writerows([row[h] for h in HEADERS] for row in data_rows)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("花名册")
    sheet.append(list(HEADERS))
    for row in data_rows:
        sheet.append([row[h] for h in HEADERS])
    workbook.save(f"{base}.xlsx")
    return base


def test_roster_upload_measurement(roster, settings):
    """Row 7b: the admin upload of the roster file goes to the background (a lowered
    limit here), each timed request's job deleted; its reference is 5a's import."""
    from students.models import RosterJob

    settings.TONGXIN = {**settings.TONGXIN, "ROSTER_SYNC_MAX_BYTES": 100}
    up = m_ledger.measure_upload(f"{roster}.csv", repeats=2)
    assert up["stored"] == {"size": up["bytes"], "status": "queued"} and up["bytes"] > up["sync_max_bytes"]
    assert up["request"]["runs"] == 2 and up["queries"] > 0 and not RosterJob.objects.exists()
    ledger = {"students": 150, "sync_max_students": 100, "rows": 1, "queries": 1, "background_build_seconds": 0.1,
              "request": {"median_ms": 5.0}, "sync_build": {"median_ms": 50.0}, "upload": up}  # fmt: skip
    results = {
        "config": {"students": STUDENTS, "small_students": STUDENTS},
        "measurements": {"ledger": {"large": {"result": ledger}}, "import": {"csv": {"result": {"seconds": 2.0}}}},
    }
    row = {c["id"]: c for c in checks_from(results)}["7b"]
    assert row["figure"] == up["request"]["median_ms"] and row["reference_figure"] == 2000 and row["met"] is None


def test_roster_import_measurement(roster):
    csv_path, xlsx_path = Path(f"{roster}.csv"), Path(f"{roster}.xlsx")
    result = {
        "csv": {"result": m_import.import_product(csv_path, rollback=True)},
        "xlsx": {"result": m_import.import_product(xlsx_path, rollback=True)},
        "parse_xlsx": {"result": m_import.parse_xlsx(xlsx_path)},
        "parse_calamine": {"result": m_import.parse_calamine(xlsx_path)},
        "csv_small": {"result": m_import.import_product(csv_path, rollback=True)},
    }
    assert Student.objects.count() == STUDENTS  # rolled back
    assert result["csv"]["result"]["created"] == result["xlsx"]["result"]["created"] == 40
    # As the admin's upload does, the import runs as the university admin, who is then
    # recorded in every history row (a cost the measurement must include).
    admin = m_import._importer()
    assert admin is not None and result["csv"]["result"]["by"] == admin.username
    assert result["csv"]["result"]["history_rows_by"] == result["xlsx"]["result"]["history_rows_by"] == 40
    assert result["parse_xlsx"]["result"]["rows"] == result["parse_calamine"]["result"]["rows"] == 40
    assert result["parse_xlsx"]["result"]["cells"] == result["parse_calamine"]["result"]["cells"]
    if connection.vendor == "postgresql":
        result["copy"] = {"result": m_import.copy_raw(csv_path, rollback=True)}
        assert result["copy"]["result"]["rows"] == 40
    results = {"config": {"students": 40, "small_students": 40}, "measurements": {"import": result}}
    rows = [c for c in checks_from(results) if c["id"] in ("5a", "5b", "5d", "5f")]
    _assert_checked(rows)
    own = {r["id"]: r for r in rows}["5f"]  # informational: the import over its own reader's parse
    assert own["met"] is None and own["reference_figure"] == result["parse_calamine"]["result"]["seconds"]


def test_a_repeated_import_reports_its_median_run_and_the_spread():
    from bench.run import median_run

    def run(seconds, rss):
        return {"result": {"seconds": seconds, "rows": 100}, "peak_rss_mb": rss}

    chosen = median_run([run(12.0, 1), {"error": "boom"}, run(10.0, 2), run(11.0, 3)])
    assert chosen["result"]["seconds"] == 11.0 and chosen["peak_rss_mb"] == 3  # the whole median run
    assert chosen["runs_seconds"] == [12.0, 10.0, 11.0]
    assert median_run([run(10.0, 1), run(12.0, 2)])["result"]["seconds"] == 12.0  # even: the slower middle
    assert median_run([{"error": "boom"}, {"error": "again"}]) == {"error": "boom"}
    results = {
        "config": {"students": 100, "small_students": 10},
        "measurements": {
            "import": {
                "csv": median_run([run(12.0, 1), run(10.0, 1), run(11.0, 1)]),
                "copy": median_run([run(6.0, 1), run(7.5, 1), run(6.5, 1)]),
                "csv_small": median_run([run(1.0, 1), run(1.5, 1), run(1.25, 1)]),
            }
        },
    }
    rows = {c["id"]: c for c in checks_from(results)}
    assert rows["5a"]["figure"] == 11.0 and rows["5a"]["reference_figure"] == 6.5
    assert rows["5a"]["note"] == "100 rows; median of 3 runs, 10–12 s; COPY: median of 3 runs, 6–7.5 s"
    assert rows["5d"]["figure"] == pytest.approx(11.0 / 1.25)
    assert rows["5d"]["note"] == "median of 3 runs, 1–1.5 s"


def _result(**result) -> dict:
    return {"result": result}


def test_growth_rows_of_every_measurement():
    """Each measurement's time at the large size against the small one, against linear
    (here 100 against 10 students: ≤ 10×); the operation that grew most for the pages."""
    wrk = {"latency_us": {"p99": 50_000}, "error_count": 0, "statuses": {"201": 10}, "acknowledged": 10}
    wrk |= {"unique_ids": 10, "acknowledged_found": 10, "stored": 10, "in_flight_at_stop": 0, "wrapped": 0}
    page = {"p95_ms": 1, "median_ms": 1}
    reminded = {"notifications": 5, "expected_students": 5, "delivered": 5, "tasks_enqueued": 2}
    results = {
        "config": {"students": 100, "small_students": 10},
        "measurements": {
            "submit": {
                "large": _result(product={**wrk, "per_second": 400.0}, ceiling={**wrk, "per_second": 800.0}),
                "small": _result(product={**wrk, "per_second": 500.0}),
            },
            "dashboard": {
                "large": _result(
                    pages={
                        "campus/live": {"page": {**page, "median_ms": 30.0}, "raw_read": page, "queries": 5, "as": "x"},
                        "campus/past": {"page": {**page, "median_ms": 12.0}, "raw_read": page, "queries": 5, "as": "x"},
                    }
                ),
                "small": _result(
                    pages={
                        "campus/live": {"page": {**page, "median_ms": 10.0}},
                        "campus/past": {"page": {**page, "median_ms": 1.0}},
                    }
                ),
            },
            "reminders": {
                "large": _result(
                    done_seconds=20.0,
                    enqueue_seconds=0.01,
                    **reminded,
                    per_student={"tasks": 100, "enqueue_seconds": 1.0},
                ),
                "small": _result(done_seconds=2.5, enqueue_seconds=0.01, **reminded),
            },
            "import": {
                "csv": _result(seconds=10.0, rows=100),
                "xlsx": _result(seconds=30.0),
                "csv_small": _result(seconds=1.0),
                "xlsx_small": _result(seconds=2.0),
            },
        },
    }
    rows = {c["id"]: c for c in checks_from(results) if "growth" in c["measurement"]}
    assert set(rows) == {"1f", "4e", "5d", "5e", "6d"}
    assert rows["1f"]["figure"] == 1.25 and rows["1f"]["reference_figure"] == 500 and rows["1f"]["met"]
    assert rows["4e"]["measurement"].startswith("4 dashboard campus/past, median") and rows["4e"]["figure"] == 12
    assert rows["4e"]["met"] is False and rows["4e"]["note"].endswith("campus/live 3.00×, campus/past 12.00×")
    assert rows["5d"]["figure"] == 10 and rows["5d"]["met"]  # linear is met
    assert rows["5e"]["figure"] == 15 and rows["5e"]["met"] is False
    assert rows["6d"]["figure"] == 8 and rows["6d"]["met"] and rows["6d"]["reference_figure"] == 2.5
    assert all(r["target"] == "≤ 10× (linear)" for r in rows.values())
    small_run = results["measurements"]["submit"]["small"]["result"]["product"]
    small_run["statuses"] = {"201": 8, "200": 2}  # it reached students it had reported already
    edited = next(c for c in checks_from(results) if c["id"] == "1f")
    assert edited["met"] is False and edited["note"].endswith("2 not new reports, the growth is not valid")
    results["measurements"]["dashboard"].pop("small")
    assert "4e" not in {c["id"] for c in checks_from(results) if "growth" in c["measurement"]}


def test_copy_reference_needs_postgresql(roster):
    if connection.vendor == "postgresql":
        pytest.skip("runs on SQLite only: checks the refusal")
    with pytest.raises(NotImplementedError):
        m_import.copy_raw(Path(f"{roster}.csv"))


@pytest.mark.skipif(not m_import.import_export_available(), reason="django-import-export is in .venv-bench only")
def test_import_export_reference(roster):
    result = m_import.import_ie(Path(f"{roster}.csv"), rows=30, rollback=True)
    assert result["rows"] == 30 and _numbers(result["seconds"], result["queries"])


def test_cpu_shares_of_a_step():
    from bench.core import cpu_shares, cpu_times
    from bench.report import details_markdown

    # user, nice, system, idle, iowait, irq, softirq, steal: 100 ticks in all
    before = [1000, 0, 200, 5000, 10, 0, 5, 40]
    after = [1040, 0, 210, 5030, 15, 0, 5, 55]
    assert cpu_shares(before, after) == {"busy": 0.5, "iowait": 0.05, "steal": 0.15}
    assert cpu_shares(None, after) is None and cpu_shares(before, before) is None
    now = cpu_times()
    if Path("/proc/stat").exists():  # Linux: the machine's counters are read
        assert len(now) == 8 and all(isinstance(t, int) for t in now) and sum(now) > 0
    else:
        assert now is None
    results = {"measurements": {"rollup": {"large": {"peak_rss_mb": 90, "cpu": cpu_shares(before, after)}}}}
    assert "| 50 % / 5 % / 15 % |" in details_markdown(results)
