"""The benchmark university and its report history.

The university is the demo's (:func:`campuses.demo.demo_seed`, set-based); its slots
and reminder ladders are the demo's (:func:`reports.demo.checkin_setup`); reports come
from the demo generator :func:`reports.demo.generate_reports`, written by
:func:`reports.demo.write_reports` (COPY on PostgreSQL).

What is generated, precisely (also in bench/README.md):

- the most recent ``template_days`` complete days (default 7) and today up to now are
  generated report by report (:func:`~reports.demo.generate_reports`);
- on PostgreSQL the older days, up to ``days`` before today, repeat that week: the
  template rows are copied server-side with their dates and times shifted by whole
  weeks (``INSERT … SELECT``), so the table has the size and the per-day shape of
  ``days`` days of history without generating each row in Python.  Elsewhere (the
  SQLite smoke test, a few hundred students) every day is generated;
- while the history is loaded, the report table's secondary indexes, unique and
  foreign-key constraints are dropped and rebuilt afterwards (foreign keys re-added
  ``NOT VALID``: the rows were made from the same tables), then ``VACUUM ANALYZE``;
- the nightly snapshots of the template days are compiled by
  :func:`reports.rollup.rollup_compile`; older days' snapshots, up to
  ``snapshot_days`` (365 by default), repeat them by week in the same way, so the
  dashboards read a snapshot table of a year.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable

from django.db import connection, connections, transaction
from django.utils import timezone

from campuses.demo import demo_exists, demo_seed
from campuses.models import Assignment, Campus
from reports.demo import checkin_setup, generate_reports, write_reports
from reports.models import CheckinSlot, DailyReport, SlotCode
from reports.rollup import rollup_compile, rollup_slot_codes
from reports.rollup_models import RollupSnapshot

#: The slot the submission benchmark posts to: open all day on every campus, so that
#: the benchmark can run at any hour.  Created for measurement 1 and removed after it.
BENCH_SLOT = SlotCode.EVENING
BENCH_SLOT_TIMES = (dt.time(0, 0), dt.time(23, 59, 58), dt.time(23, 59, 59))


def build(
    *,
    students: int,
    days: int,
    snapshot_days: int = 365,
    template_days: int = 7,
    seed: int = 2026,
    now: dt.datetime | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Seed the university (when none exists), its slots, ``days`` days of reports and
    ``snapshot_days`` days of snapshots.  Returns counts and seconds per step."""
    now = now or timezone.now()
    out: dict = {"students": students, "days": days, "snapshot_days": snapshot_days}
    started = time.perf_counter()
    if not demo_exists():
        demo_seed(students=students, seed=seed)
    out["seed_seconds"] = round(time.perf_counter() - started, 1)
    log(f"  university of {students:,} students in {out['seed_seconds']} s")
    checkin_setup()
    if days > 0:
        out.update(write_history(days=days, now=now, seed=seed, template_days=template_days, log=log))
        out.update(write_snapshots(days=days, snapshot_days=snapshot_days, now=now, template_days=template_days))
        log(f"  {out['snapshots']:,} snapshots ({out['snapshot_days']} days) in {out['snapshot_seconds']} s")
    return out


def _template(days: int, template_days: int, today: dt.date) -> list[dt.date]:
    """The complete days generated row by row, oldest first."""
    n = days if connection.vendor != "postgresql" else min(days, template_days)
    return [today - dt.timedelta(days=k) for k in range(n, 0, -1)]


def write_history(*, days: int, now: dt.datetime, seed: int, template_days: int, log) -> dict:
    """``days`` days of reports before today and today's up to ``now`` (see the module
    docstring for what is generated and what repeats)."""
    today = timezone.localdate(now)
    template = _template(days, template_days, today)
    postgres = connection.vendor == "postgresql"
    started = time.perf_counter()
    saved = _drop_secondary(DailyReport._meta.db_table) if postgres else None
    with transaction.atomic():
        generated = write_reports(generate_reports(days=[*template, today], until=now, seed=seed))
    generated_at = time.perf_counter()
    log(f"  {generated:,} reports generated in {generated_at - started:.1f} s")
    repeated = 0
    if postgres and days > len(template):
        repeated = _repeat_weeks(DailyReport, template=template, lowest=today - dt.timedelta(days=days))
        log(f"  {repeated:,} reports repeated by week in {time.perf_counter() - generated_at:.1f} s")
    rebuilt_at = time.perf_counter()
    if saved is not None:
        _restore_secondary(DailyReport._meta.db_table, saved)
        log(f"  indexes and constraints rebuilt in {time.perf_counter() - rebuilt_at:.1f} s")
    vacuum_at = time.perf_counter()
    if postgres:
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {DailyReport._meta.db_table}")
            cursor.execute("ANALYZE")
    return {
        "reports": generated + repeated,
        "reports_generated": generated,
        "reports_repeated": repeated,
        "template_days": len(template),
        "generate_seconds": round(generated_at - started, 1),
        "repeat_seconds": round(rebuilt_at - generated_at, 1),
        "index_seconds": round(vacuum_at - rebuilt_at, 1),
        "vacuum_seconds": round(time.perf_counter() - vacuum_at, 1),
    }


def write_snapshots(*, days: int, snapshot_days: int, now: dt.datetime, template_days: int) -> dict:
    """Compile the template days' snapshots; repeat them by week back to
    ``snapshot_days`` before today (PostgreSQL)."""
    today = timezone.localdate(now)
    template = _template(days, template_days, today)
    started = time.perf_counter()
    for day in template:
        for code in rollup_slot_codes(day):
            rollup_compile(on=day, slot_code=code)
    repeated = 0
    if connection.vendor == "postgresql" and snapshot_days > len(template):
        repeated = _repeat_weeks(RollupSnapshot, template=template, lowest=today - dt.timedelta(days=snapshot_days))
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {RollupSnapshot._meta.db_table}")
    oldest = RollupSnapshot.objects.order_by("date").values_list("date", flat=True).first()
    return {
        "snapshots": RollupSnapshot.objects.count(),
        "snapshots_repeated": repeated,
        "snapshot_days": (today - oldest).days if oldest else 0,
        "snapshot_seconds": round(time.perf_counter() - started, 1),
    }


def _repeat_weeks(model, *, template: list[dt.date], lowest: dt.date) -> int:
    """Copy the rows of the ``template`` days back by whole template lengths down to
    ``lowest`` (PostgreSQL, server-side), in two connections at once."""
    width = len(template)
    shifts = math.ceil((template[0] - lowest).days / width)
    if shifts < 1:
        return 0
    columns = [f for f in model._meta.concrete_fields if not f.primary_key]
    select = []
    for f in columns:
        kind = f.get_internal_type()
        if kind == "DateField":
            select.append(f"{f.column} - (k * {width})")
        elif kind == "DateTimeField":
            select.append(f"{f.column} - (k * {width}) * interval '1 day'")
        else:
            select.append(f.column)
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(f.column for f in columns)}) "
        f"SELECT {', '.join(select)} FROM {model._meta.db_table} "
        f"CROSS JOIN generate_series(%s::int, %s::int) AS k "
        f"WHERE date BETWEEN %s AND %s AND date - (k * {width}) >= %s"
    )
    halves = [(1, shifts // 2), (shifts // 2 + 1, shifts)]
    counts = _in_threads(
        [
            (lambda lo=lo, hi=hi: _execute_count(sql, [lo, hi, template[0], template[-1], lowest]))
            for lo, hi in halves
            if lo <= hi
        ]
    )
    return sum(counts)


def _execute_count(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute(sql, params)
        return cursor.rowcount


def _in_threads(jobs: list[Callable[[], object]]) -> list:
    """Run each job in its own thread (so: its own database connection), wait for all."""
    results: list = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(i: int, job) -> None:
        try:
            results[i] = job()
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def _drop_secondary(table: str) -> dict:
    """Drop ``table``'s unique and foreign-key constraints and its other indexes (not
    the primary key, not CHECKs); return their definitions for
    :func:`_restore_secondary`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('u', 'f')",
            [table],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
            [table, table],
        )
        indexes = cursor.fetchall()
        for name, _kind, _definition in constraints:
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    return {"constraints": constraints, "indexes": indexes}


def _restore_secondary(table: str, saved: dict) -> None:
    """Rebuild what :func:`_drop_secondary` dropped, two builds at a time."""
    statements = [definition for _name, definition in saved["indexes"]]
    statements += [
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
        for name, kind, definition in saved["constraints"]
        if kind == "u"
    ]

    def build(batch: list[str]) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '512MB'")
            for statement in batch:
                cursor.execute(statement)

    _in_threads([lambda batch=statements[i::2]: build(batch) for i in range(2)])
    with connection.cursor() as cursor:
        for name, kind, definition in saved["constraints"]:
            if kind == "f":
                cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition} NOT VALID')


# ---------------------------------------------------------------------------
# The always-open slot of measurement 1
# ---------------------------------------------------------------------------
def bench_slot_setup() -> list[CheckinSlot]:
    """An ``evening`` slot open all day on every campus (no reminder steps)."""
    opens, due, closes = BENCH_SLOT_TIMES
    slots = []
    for campus in Campus.objects.order_by("pk"):
        slot, _ = CheckinSlot.objects.update_or_create(
            campus=campus, code=BENCH_SLOT, defaults={"opens_at": opens, "due_at": due, "closes_at": closes}
        )
        slots.append(slot)
    return slots


def bench_slot_teardown() -> int:
    """Remove the benchmark slot with its reports and their history rows."""
    slot_ids = list(CheckinSlot.objects.filter(code=BENCH_SLOT).values_list("pk", flat=True))
    with transaction.atomic():
        DailyReport.history.model.objects.filter(slot_id__in=slot_ids).delete()
        deleted = DailyReport.objects.filter(slot_id__in=slot_ids)._raw_delete(DailyReport.objects.db)
        CheckinSlot.objects.filter(pk__in=slot_ids).delete()
    return deleted


def duty_holder(role: str, **unit):
    """The first user (by assignment) holding ``role``, on ``unit`` if given: whom a
    measurement acts as."""
    assignment = Assignment.objects.filter(role=role, **unit).select_related("user").order_by("pk").first()
    if assignment is None:
        raise LookupError(f"no {role} for {unit}")
    return assignment.user
