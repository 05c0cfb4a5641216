"""The results table: every target of issue 6 as one row (figure, reference measured in
the same run, ratio, target, met or MISSED), computed from the measurements' JSON.

``python -m bench.report [bench/results/latest.json]`` prints the Markdown table that
bench/README.md keeps.  A measurement that failed gives MISSED rows with its error.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from bench.core import check, round_complete


def _get(data: dict, *path, default=None):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def _failed(results: dict, name: str, ids: list[tuple[str, str, str]]) -> list[dict]:
    error = None
    for part in (_get(results, "measurements", name) or {}).values():
        if isinstance(part, dict) and part.get("error"):
            error = part["error"]
    note = f"failed: {error}" if error else "not run"
    return [check(i, what, None, "", target=target, met=False, note=note) for i, what, target in ids]


def _growth(large: float | None, small: float | None) -> float | None:
    return large / small if large and small else None


def _growth_check(
    id: str,
    what: str,
    large: float | None,
    small: float | None,
    *,
    config: dict,
    reference: str,
    unit: str,
    note: str = "",
    shown: float | None = None,
) -> dict:
    """A growth row: ``large`` ÷ ``small`` (times of the same operation at the two sizes),
    against linear (the sizes' ratio); the reference column shows ``small``, or ``shown``
    where the small size's figure is not a time (a rate)."""
    scale = f"{config.get('small_students', 0):,} → {config.get('students', 0):,}"
    factor = (config.get("students") or 1) / (config.get("small_students") or 1)
    g = _growth(large, small)
    return check(id, f"{what}: growth {scale}", g, "×", target=f"≤ {factor:.0f}× (linear)",
                 met=g is not None and g <= factor, reference=reference,
                 reference_figure=small if shown is None else shown, reference_unit=unit, note=note)  # fmt: skip


def _spread(runs: list[float] | None, prefix: str = "") -> str:
    """``prefix``, then the spread of the ``runs`` (seconds) whose median is the figure."""
    runs = runs or []
    spread = f"median of {len(runs)} runs, {min(runs):.3g}–{max(runs):.3g} s" if len(runs) > 1 else ""
    return "; ".join(part for part in (prefix, spread) if part)


def _rounds_complete(result: dict) -> tuple[int, int]:
    """(complete, all) of a measurement-6 result's rounds: complete when every expected
    student was reminded and every reminder delivered (``runs_complete``, from
    ``bench.m_reminders.median_round``; a single round's own counts otherwise)."""
    if "runs_complete" in result:
        return result["runs_complete"], len(result["runs_done_seconds"])
    return int(round_complete(result)), 1


def _runs_note(measurements: dict, key: str, prefix: str = "") -> str:
    """``prefix``, then the spread of ``key``'s runs where the figure is a median."""
    return _spread(_get(measurements, key, "runs_seconds"), prefix)


def checks_from(results: dict) -> list[dict]:
    config = results.get("config", {})
    out: list[dict] = []
    m = results.get("measurements", {})

    # 1. submissions
    s = _get(m, "submit", "large", "result")
    if s and "product" in s:
        p, c = s["product"], s["ceiling"]
        conn = _get(s, "wrk", "connections", default=0)
        what = "1 POST /api/v1/reports/ (gunicorn, wrk)"
        out.append(
            check("1a", what + ": submissions/s", p["per_second"], "/s", target="≥ 400/s", met=p["per_second"] >= 400,
                  reference="ceiling view, raw upsert", reference_figure=c["per_second"], ratio_kind="of")
        )  # fmt: skip
        share = p["per_second"] / c["per_second"] if c["per_second"] else 0
        out.append(
            check("1b", what + ": share of the ceiling", p["per_second"], "/s", target="≥ 0.6 of ceiling",
                  met=share >= 0.6, reference="ceiling view, raw upsert", reference_figure=c["per_second"],
                  ratio_kind="of")
        )  # fmt: skip
        p99 = p["latency_us"]["p99"] / 1000
        out.append(
            check("1c", what + ": p99 latency", p99, "ms", target="< 300 ms", met=p99 < 300,
                  reference="ceiling p99", reference_figure=c["latency_us"]["p99"] / 1000, ratio_kind="times",
                  note=f"{conn} connections")
        )  # fmt: skip
        out.append(
            check("1d", what + ": errors", p["error_count"], "", target="0", met=p["error_count"] == 0,
                  reference="ceiling errors", reference_figure=c["error_count"],
                  note=f"statuses {p['statuses']}")
        )  # fmt: skip
        lost = p["unique_ids"] - p["acknowledged_found"]
        sound = lost == 0 and p["unique_ids"] == p["acknowledged"] and 0 <= p["in_flight_at_stop"] <= conn
        out.append(
            check("1e", what + ": acknowledged but not stored", lost, "", target="0 (ack = stored)", met=sound,
                  note=f"{p['acknowledged']} acknowledged, {p['stored']} stored "
                       f"({p['in_flight_at_stop']} in flight when wrk stopped), {p['wrapped']} repeated students")
        )  # fmt: skip
        small = _get(m, "submit", "small", "result", "product")
        if small:  # the time of a submission: the inverse of the rate
            note = f"time per submission; the small run's statuses {small['statuses']}"
            out.append(_growth_check("1f", what, 1 / p["per_second"] if p["per_second"] else None,
                                     1 / small["per_second"] if small["per_second"] else None, config=config,
                                     reference="submissions/s at the small size", unit="/s", note=note,
                                     shown=small["per_second"]))  # fmt: skip
            edits = sum(n for code, n in small["statuses"].items() if code != "201")
            if edits:  # the small run answered students it had already reported: not new submissions
                out[-1] |= {"met": False, "note": f"{note}: {edits} not new reports, the growth is not valid"}
    else:
        target = "≥ 400/s, ≥ 0.6 of ceiling, p99 < 300 ms"
        out += _failed(results, "submit", [("1a", "1 POST /api/v1/reports/", target)])

    # 2. roll-up
    r = _get(m, "rollup", "large", "result")
    if r:
        what = "2 nightly roll-up, one day"
        t = r["rollup"]["median_ms"] / 1000
        sql = r["hand_sql"]["median_ms"] / 1000
        out.append(check("2a", what, t, "s", target="≤ 1 s", met=t <= 1, reference="hand-written SQL",
                         reference_figure=sql, ratio_kind="times"))  # fmt: skip
        out.append(check("2b", what + " vs hand-written SQL", t, "s", target="≤ 1.5× SQL", met=t / sql <= 1.5,
                         reference="hand-written SQL", reference_figure=sql, ratio_kind="times",
                         note="" if r["hand_sql_matches_rollup"] else "SQL and roll-up DISAGREE"))  # fmt: skip
        naive = r["naive"]["extrapolated_seconds"]
        note = f"naive timed on {r['naive']['sample_classes']} of {r['classes']} classes, extrapolated"
        out.append(check("2c", what + " vs naive ORM loop", t, "s", target="≥ 100× faster",
                         met=bool(naive) and naive / t >= 100, reference="naive per-class ORM loop",
                         reference_figure=naive, ratio_kind="faster", note=note))  # fmt: skip
        small = _get(m, "rollup", "small", "result", "rollup", "median_ms")
        out.append(_growth_check("2d", what, t, small / 1000 if small else None, config=config,
                                 reference="time at the small size", unit="s"))  # fmt: skip
        same = _get(r, "hand_sql_product_settings", "median_ms")
        if same:
            out.append(check("2e", what + " vs the same SQL under the roll-up's settings", t, "s", target="—",
                             met=None, reference="hand-written SQL, no JIT", reference_figure=same / 1000,
                             ratio_kind="times", note="JIT off for both"))  # fmt: skip
    else:
        out += _failed(results, "rollup", [("2a", "2 nightly roll-up", "≤ 1 s, ≤ 1.5× SQL, ≥ 100× naive")])

    # 3. missing list
    ml = _get(m, "missing", "large", "result", "levels")
    if ml:
        targets = {"school_class": ("3a", 50), "college": ("3b", None), "campus": ("3c", 300)}
        for level, (cid, limit) in targets.items():
            row = ml[level]
            p95 = row["api"]["p95_ms"]
            out.append(
                check(cid, f"3 missing list API, {level} p95 ({row['missing']} missing)", p95, "ms",
                      target=f"≤ {limit} ms" if limit else "—", met=(p95 <= limit) if limit else None,
                      reference="bare SQL p95", reference_figure=row["bare_sql"]["p95_ms"], ratio_kind="times",
                      note=f"{row['queries']} queries, as {row['as']}")
            )  # fmt: skip
        small = _get(m, "missing", "small", "result", "levels", "campus", "api", "p95_ms")
        out.append(_growth_check("3d", "3 missing list, campus", ml["campus"]["api"]["p95_ms"], small, config=config,
                                 reference="p95 at the small size", unit="ms"))  # fmt: skip
    else:
        out += _failed(results, "missing", [("3a", "3 missing list API", "class ≤ 50 ms, campus ≤ 300 ms p95")])

    # 4. dashboards: the page's p95 against 150 ms (4a-4f), and its median against the
    # raw read's median (4g-4l) — medians for the speed-up, so that one slow sample on
    # either side does not decide it.
    pages = _get(m, "dashboard", "large", "result", "pages")
    as_at = _get(m, "dashboard", "large", "result", "measured_as_at")
    if pages:
        rows = list(pages.items())
        for n, (key, row) in enumerate(rows):
            p95 = row["page"]["p95_ms"]
            note = f"{row['queries']} queries, as {row['as']}" + (f", at {as_at[:16]}" if as_at else "")
            out.append(
                check(f"4{chr(97 + n)}", f"4 dashboard {key} p95", p95, "ms", target="≤ 150 ms", met=p95 <= 150,
                      reference="raw reports read (median)", reference_figure=row["raw_read"]["median_ms"],
                      ratio_kind="faster", note=note)
            )  # fmt: skip
        for n, (key, row) in enumerate(rows, len(rows)):
            median, raw = row["page"]["median_ms"], row["raw_read"]["median_ms"]
            note = "a class's raw read is its ~30 students' rows" if key.startswith("school_class") else ""
            out.append(
                check(f"4{chr(97 + n)}", f"4 dashboard {key}: median vs the raw read", median, "ms",
                      target="≥ 100× faster", met=bool(median) and raw / median >= 100,
                      reference="raw reports read (median)", reference_figure=raw, ratio_kind="faster", note=note)
            )  # fmt: skip
        small_pages = _get(m, "dashboard", "small", "result", "pages") or {}
        growth = {
            key: row["page"]["median_ms"] / small_pages[key]["page"]["median_ms"]
            for key, row in rows
            if _get(small_pages, key, "page", "median_ms")
        }
        if growth:  # the page that grew most, every page's growth in the note
            worst = max(growth, key=growth.get)
            note = "the page that grew most; " + ", ".join(f"{k} {g:.2f}×" for k, g in growth.items())
            out.append(_growth_check(f"4{chr(97 + 2 * len(rows))}", f"4 dashboard {worst}, median",
                                     pages[worst]["page"]["median_ms"], small_pages[worst]["page"]["median_ms"],
                                     config=config, reference="median at the small size", unit="ms",
                                     note=note))  # fmt: skip
        # A minute's first view of a cached live page (informational: the figure the
        # others are measured after).
        firsts = [(key, row) for key, row in rows if row.get("first_view")]
        for n, (key, row) in enumerate(firsts, 2 * len(rows) + 1):
            first = row["first_view"]
            out.append(
                check(f"4{chr(97 + n)}", f"4 dashboard {key}: the minute's first view, median",
                      first["page"]["median_ms"], "ms", target="—", met=None,
                      reference="raw reports read (median)", reference_figure=row["raw_read"]["median_ms"],
                      ratio_kind="faster", note=f"{first['queries']} queries; the figures and lists computed")
            )  # fmt: skip
    else:
        out += _failed(results, "dashboard", [("4a", "4 dashboard pages", "p95 ≤ 150 ms; ≥ 100× faster than raw")])

    # 5. imports
    im = _get(m, "import") or {}
    csv_s = _get(im, "csv", "result", "seconds")
    if csv_s is not None:
        copy_s = _get(im, "copy", "result", "seconds")
        runs = _runs_note(im, "csv", f"{_get(im, 'csv', 'result', 'rows')} rows")
        copy_runs = _runs_note(im, "copy")
        out.append(check("5a", "5 roster import, CSV", csv_s, "s", target="≤ 10 s", met=csv_s <= 10,
                         reference="raw COPY of the rows", reference_figure=copy_s, ratio_kind="times",
                         note=f"{runs}; COPY: {copy_runs}" if copy_runs else runs))  # fmt: skip
        xlsx_s = _get(im, "xlsx", "result", "seconds")
        parse_s = _get(im, "parse_xlsx", "result", "seconds")
        out.append(check("5b", "5 roster import, XLSX", xlsx_s, "s", target="≤ 1.5× bare parse",
                         met=bool(xlsx_s and parse_s) and xlsx_s / parse_s <= 1.5,
                         reference="openpyxl read-only parse", reference_figure=parse_s,
                         ratio_kind="times"))  # fmt: skip
        ie = _get(im, "import_export", "result")
        ie_total = None
        note = ""
        if ie:
            total = _get(im, "import_export", "total_rows") or ie["rows"]
            ie_total = ie["seconds"] * total / ie["rows"]
            note = f"import-export timed on {ie['rows']:,} rows" + (", extrapolated" if total > ie["rows"] else "")
        else:
            note = f"import-export: {_get(im, 'import_export', 'error', default='not run')}"
        out.append(check("5c", "5 roster import, CSV vs django-import-export", csv_s, "s", target="≥ 10× faster",
                         met=bool(ie_total) and ie_total / csv_s >= 10, reference="django-import-export (tuned)",
                         reference_figure=ie_total, ratio_kind="faster", note=note))  # fmt: skip
        small = _get(im, "csv_small", "result", "seconds")
        out.append(_growth_check("5d", "5 roster import, CSV", csv_s, small, config=config,
                                 reference="time at the small size", unit="s",
                                 note=_runs_note(im, "csv_small")))  # fmt: skip
        xlsx_small = _get(im, "xlsx_small", "result", "seconds")
        if xlsx_small:
            out.append(_growth_check("5e", "5 roster import, XLSX", xlsx_s, xlsx_small, config=config,
                                     reference="time at the small size", unit="s"))  # fmt: skip
        own_parse_s = _get(im, "parse_calamine", "result", "seconds")
        if own_parse_s is not None:
            out.append(check("5f", "5 roster import, XLSX vs its own reader's bare parse", xlsx_s, "s", target="—",
                             met=None, reference="python-calamine parse (the import's reader)",
                             reference_figure=own_parse_s, ratio_kind="times"))  # fmt: skip
    else:
        err = _get(im, "csv", "error", default="not run")
        out.append(check("5a", "5 roster import", None, "", target="CSV ≤ 10 s", met=False, note=f"failed: {err}"))

    # 6. reminders
    def _extrapolated(per: dict) -> str:
        timed = per.get("timed_tasks", per["tasks"])
        return f"; reference timed on {timed:,} tasks, extrapolated" if timed < per["tasks"] else ""

    rm = _get(m, "reminders", "large", "result")
    if rm:
        per = rm["per_student"]
        out.append(check("6a", "6 reminder round through a Celery worker", rm["done_seconds"], "s", target="≤ 30 s",
                         met=rm["done_seconds"] <= 30, reference=f"enqueue {per['tasks']:,} tiny tasks",
                         reference_figure=per["enqueue_seconds"], ratio_kind="faster",
                         note=_spread(rm.get("runs_done_seconds"),
                                      f"{rm['notifications']:,} reminded" + _extrapolated(per))))  # fmt: skip
        out.append(check("6b", "6 reminder round: time to enqueue", rm["enqueue_seconds"], "s",
                         target="≥ 25× faster", met=per["enqueue_seconds"] / max(rm["enqueue_seconds"], 1e-9) >= 25,
                         reference="one task per student", reference_figure=per["enqueue_seconds"],
                         ratio_kind="faster", note=f"{rm['tasks_enqueued']} tasks vs {per['tasks']:,}"))  # fmt: skip
        small = _get(m, "reminders", "small", "result")
        sizes = [(rm, config.get("students", 0)), (small, config.get("small_students", 0))]
        rounds = [(*_rounds_complete(r), n) for r, n in sizes if r]
        complete = "; ".join(f"{done} of {total} rounds complete at {n:,} students" for done, total, n in rounds)
        out.append(check("6c", "6 reminder round: students reminded", rm["notifications"], "",
                         target="= expected", met=all(done == total for done, total, _ in rounds),
                         reference="students expected", reference_figure=rm["expected_students"], ratio_kind="of",
                         note=complete))  # fmt: skip
        if small:
            note = _spread(small.get("runs_done_seconds"), f"{small['notifications']:,} reminded at the small size")
            out.append(_growth_check("6d", "6 reminder round through a Celery worker", rm["done_seconds"],
                                     small["done_seconds"], config=config, reference="time at the small size",
                                     unit="s", note=note))  # fmt: skip
    else:
        out += _failed(results, "reminders", [("6a", "6 reminder round", "≤ 30 s; ≥ 25× faster to enqueue")])

    # 7. beyond the six (no target): the whole university's stay ledger, as the request
    # that hands it to the background against building it in the request.
    lg = _get(m, "ledger", "large", "result")
    what = "7 留校学生情况统计表, whole university: the request (to the background)"
    if lg:
        note = (f"{lg['students']:,} students over the {lg['sync_max_students']:,} limit, {lg['queries']} queries; "
                f"the worker built {lg['rows']:,} rows in {lg['background_build_seconds']:.3g} s")  # fmt: skip
        out.append(check("7a", what, lg["request"]["median_ms"], "ms", target="—", met=None,
                         reference="built in the request (before)", reference_figure=lg["sync_build"]["median_ms"],
                         ratio_kind="faster", note=note))  # fmt: skip
        up = lg.get("upload")
        csv_s = _get(m, "import", "csv", "result", "seconds")
        if up:
            note = (f"{up['bytes'] / 1e6:.1f} MB over the {up['sync_max_bytes'] / 1e6:g} MB limit, "
                    f"{up['queries']} queries; stored, imported by the worker")  # fmt: skip
            out.append(check("7b", "7 roster upload, 100,000 rows CSV: the request (to the background)",
                             up["request"]["median_ms"], "ms", target="—", met=None,
                             reference="imported in the request (5a)", ratio_kind="faster", note=note,
                             reference_figure=csv_s * 1000 if csv_s else None))  # fmt: skip
    elif "ledger" in m:
        out += _failed(results, "ledger", [("7a", what, "—")])
    return out


# ---------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------
def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    else:
        text = f"{value:,}"
    return f"{text} {unit}".strip() if unit not in ("", "×") else f"{text}{unit}"


def _ratio(row: dict) -> str:
    r = row.get("ratio")
    if r is None:
        return "—"
    faster = f"{r:,.0f}× faster" if r >= 10 else f"{r:.2g}× faster"
    return {"of": f"{r:.2f} of ref", "times": f"{r:.2f}× ref", "faster": faster}.get(row["ratio_kind"], f"{r:.2f}")


def _result(row: dict) -> str:
    return "—" if row["met"] is None else "met" if row["met"] else "MISSED"


def rows(results: dict) -> list[list[str]]:
    out = []
    for row in results.get("checks", []):
        ref = _fmt(row["reference_figure"], row.get("reference_unit", row["unit"]))
        reference = f"{row['reference']}: {ref}" if row["reference"] else "—"
        out.append([row["id"], row["measurement"], _fmt(row["figure"], row["unit"]), reference, _ratio(row),
                    row["target"], _result(row)])  # fmt: skip
    return out


HEADER = ["#", "measurement", "figure", "reference (same run)", "ratio", "target", "result"]


def print_table(results: dict) -> None:
    table = [HEADER, *rows(results)]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    print()
    for n, row in enumerate(table):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for row in results.get("checks", []):
        if row["note"]:
            print(f"  {row['id']}: {row['note']}")
    missed = [r["id"] for r in results.get("checks", []) if r["met"] is False]
    print(f"\n{len(missed)} target(s) missed: {', '.join(missed)}" if missed else "\nevery target met")


def markdown_table(results: dict) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row, data in zip(rows(results), results.get("checks", []), strict=True):
        cells = [c.replace("|", "\\|") for c in row]
        if data["met"] is False:
            cells[-1] = "**MISSED**"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _steps(results: dict):
    """(label, child payload, queries) for every step that ran."""
    m = results.get("measurements", {})
    r = lambda *path: _get(m, *path) or {}  # noqa: E731
    sub = r("submit", "large", "result")
    yield (
        "1 submission (per request; ceiling)",
        r("submit", "large"),
        (f"{_get(sub, 'queries_per_request', 'product')}; {_get(sub, 'queries_per_request', 'ceiling')}"),
    )
    for size in ("large", "small"):
        ro = r("rollup", size, "result")
        yield (
            f"2 roll-up, {size} (roll-up; hand SQL; naive per class)",
            r("rollup", size),
            (f"{ro.get('rollup_queries')}; {ro.get('hand_sql_queries')}; {_get(ro, 'naive', 'queries_per_class')}"),
        )
    for size in ("large", "small"):
        levels = _get(m, "missing", size, "result", "levels") or {}
        counts = "; ".join(f"{k} {v['queries']}" for k, v in levels.items())
        yield f"3 missing list, {size} (per request)", r("missing", size), counts
    pages = _get(m, "dashboard", "large", "result", "pages") or {}
    yield (
        "4 dashboards (per page)",
        r("dashboard", "large"),
        "; ".join(
            f"{k} {v['queries']}" + (f" (first view {v['first_view']['queries']})" if v.get("first_view") else "")
            for k, v in pages.items()
        ),
    )
    for key in ("csv", "xlsx", "parse_xlsx", "parse_calamine", "copy", "import_export", "csv_small", "xlsx_small"):
        yield f"5 import: {key}", r("import", key), _get(r("import", key), "result", "queries", default="—")
    rm = r("reminders", "large", "result")
    yield "6 reminder round (the measuring process)", r("reminders", "large"), "—"
    yield (
        "6 same round in process, small",
        r("reminders", "small_inprocess"),
        _get(r("reminders", "small_inprocess"), "result", "queries", default="—"),
    )
    if rm:
        yield "6 Celery worker", {"peak_rss_mb": rm.get("worker_peak_rss_mb")}, "—"
    if sub:
        yield "1 gunicorn worker", {"peak_rss_mb": sub.get("server_worker_peak_rss_mb")}, "—"
    if "ledger" in m:
        lg = r("ledger", "large", "result")
        queries = f"{lg.get('queries')}; {_get(lg, 'upload', 'queries', default='—')}"
        yield "7 to the background (stay ledger request, its build; roster upload)", r("ledger", "large"), queries


def details_markdown(results: dict) -> str:
    """SQL statements per operation, peak memory and load of every step."""
    lines = [
        "| step | SQL statements per operation | peak RSS (MiB) | of which at start | load before → after "
        "| CPU busy / iowait / steal |",
        "|---|---|---|---|---|---|",
    ]
    for label, payload, queries in _steps(results):
        if not payload:
            continue
        load = f"{payload.get('load_before', ['—'])[0]} → {payload.get('load_after', ['—'])[0]}"
        cpu = payload.get("cpu")
        shares = " / ".join(f"{100 * cpu[k]:.0f} %" for k in ("busy", "iowait", "steal")) if cpu else "—"
        lines.append(
            f"| {label} | {queries} | {payload.get('peak_rss_mb', '—')} | {payload.get('baseline_rss_mb', '—')} | "
            f"{load if 'load_before' in payload else '—'} | {shares} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else Path(__file__).with_name("results") / "latest.json"
    results = json.loads(path.read_text())
    results["checks"] = checks_from(results)  # by this code's rules, from the run's measurements
    print(markdown_table(results))
    print()
    print(details_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
