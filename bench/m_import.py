"""Measurement 5: importing a roster (花名册) of new students from CSV and from XLSX.

- figures: :func:`students.roster.roster_import` (what ``manage.py import_roster``
  runs) with full scope, of a CSV and of an XLSX file with the same rows
  (bench/roster_gen.py), each into a fresh copy of a small university;
- references: a raw ``COPY`` of the same rows (the rooms first, then the students,
  their unit ids looked up in memory); openpyxl's read-only parse of the XLSX file
  alone (every cell read, nothing else), and python-calamine's — the product's own
  reader — the same way; django-import-export tuned as its docs
  advise (bench/ie_resource.py), on the first rows of the CSV when the run is bounded
  (extrapolated linearly, and said so).

Each function can roll back what it wrote (the smoke test imports several times into
one database); the benchmark runs each in its own process and database instead, so
that the peak memory reported is that operation's.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from django.db import connection, transaction
from django.utils import timezone

from bench.core import QueryCounter
from bench.data import duty_holder
from campuses.models import Building, Campus, Role, Room, SchoolClass
from campuses.scoping import scope_for
from students.models import Student
from students.roster import roster_import

_GENDERS = {"男": "M", "女": "F"}
_WHEREABOUTS = {"在校": "on_campus", "回家": "home", "实习": "internship", "其他": "elsewhere"}
_STATUS = {"在读": "enrolled", "休学": "suspended"}


class _Rollback(Exception):
    pass


def _maybe_rolled_back(rollback: bool, fn):
    if not rollback:
        return fn()
    result = None
    try:
        with transaction.atomic():
            result = fn()
            raise _Rollback
    except _Rollback:
        pass
    return result


def _importer():
    """The university admin who uploads the roster (the admin's import records its user
    in every history row, as the benchmark's must)."""
    return duty_holder(Role.UNIVERSITY_ADMIN)


def import_product(path: Path, *, rollback: bool = False) -> dict:
    """The product's import of ``path`` (all rows new), as the university admin."""

    def run() -> dict:
        actor = _importer()
        scope = scope_for(actor)
        with QueryCounter() as counter:
            started = time.perf_counter()
            result = roster_import(source=path, scope=scope, actor=actor)
            seconds = time.perf_counter() - started
        if not result.imported:
            raise RuntimeError(f"import refused: {result.errors[:5]}")
        return {
            "seconds": round(seconds, 3),
            "rows": result.total_rows,
            "created": result.created,
            "units_created": result.units_created,
            "queries": counter.count,
            "by": actor.username,
            "history_rows_by": Student.history.filter(history_user=actor).count(),
        }

    return _maybe_rolled_back(rollback, run)


def parse_xlsx(path: Path) -> dict:
    """openpyxl's read-only parse of every cell, nothing else."""
    from openpyxl import load_workbook

    started = time.perf_counter()
    workbook = load_workbook(path, read_only=True, data_only=True)
    rows = cells = 0
    for values in workbook.active.iter_rows(values_only=True):
        rows += 1
        cells += len(values)
    workbook.close()
    return {"seconds": round(time.perf_counter() - started, 3), "rows": rows - 1, "cells": cells}


def parse_calamine(path: Path) -> dict:
    """python-calamine's parse of every cell (the reader the product's import uses since
    ``students.roster`` left openpyxl), nothing else: the product's overhead over its
    own parser (row 5f), beside 5b's reference, openpyxl's, which the issue names."""
    from python_calamine import CalamineWorkbook

    started = time.perf_counter()
    with open(path, "rb") as handle:
        workbook = CalamineWorkbook.from_filelike(handle)
    rows = cells = 0
    for values in workbook.get_sheet_by_index(0).iter_rows():
        rows += 1
        cells += len(values)
    workbook.close()
    return {"seconds": round(time.perf_counter() - started, 3), "rows": rows - 1, "cells": cells}


def _read_csv(path: Path, limit: int | None = None) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows[:limit] if limit else rows


def copy_raw(path: Path, *, rollback: bool = False) -> dict:
    """COPY the same rows (PostgreSQL): the new rooms, then the students."""
    if connection.vendor != "postgresql":
        raise NotImplementedError("COPY needs PostgreSQL")

    def run() -> dict:
        started = time.perf_counter()
        rows = _read_csv(path)
        campuses = dict(Campus.objects.values_list("name", "id"))
        classes = {
            (c.grade.college.campus_id, c.grade.college.name, c.name): c
            for c in SchoolClass.objects.select_related("grade__college")
        }
        buildings = {(b.campus_id, b.name): b.pk for b in Building.objects.all()}
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            rooms = sorted({(buildings[(campuses[r["校区"]], r["楼宇"])], r["宿舍"]) for r in rows if r["宿舍"]})
            with cursor.copy("COPY campuses_room (building_id, number, beds) FROM STDIN") as copy:
                for building_id, number in rooms:
                    copy.write_row((building_id, number, 4))
            room_ids = {
                (b, n): pk
                for pk, b, n in Room.objects.filter(building_id__in={b for b, _ in rooms}).values_list(
                    "id", "building_id", "number"
                )
            }
            columns = (
                "student_number, name, gender, school_class_id, grade_id, college_id, campus_id, room_id, "
                "building_id, bed, phone, id_number, hometown_province, hometown_city, whereabouts, "
                "enrolment_status, guardian_name, guardian_phone, created_at, updated_at"
            )
            with cursor.copy(f"COPY {Student._meta.db_table} ({columns}) FROM STDIN") as copy:
                for r in rows:
                    campus_id = campuses[r["校区"]]
                    klass = classes[(campus_id, r["学院"], r["班级"])]
                    building_id = buildings[(campus_id, r["楼宇"])] if r["宿舍"] else None
                    county = r["生源地"]
                    copy.write_row(
                        (
                            r["学号"],
                            r["姓名"],
                            _GENDERS[r["性别"]],
                            klass.pk,
                            klass.grade_id,
                            klass.grade.college_id,
                            campus_id,
                            room_ids.get((building_id, r["宿舍"])),
                            building_id,
                            r["床位"],
                            r["手机"],
                            r["身份证号"],
                            f"{county[:2]}0000",
                            f"{county[:4]}00",
                            _WHEREABOUTS.get(r["当前所在地"], "on_campus"),
                            _STATUS.get(r["学籍状态"], "enrolled"),
                            r["监护人"],
                            r["监护人电话"],
                            now,
                            now,
                        )
                    )
        return {"seconds": round(time.perf_counter() - started, 3), "rows": len(rows), "rooms": len(rooms)}

    return _maybe_rolled_back(rollback, run)


def import_export_available() -> bool:
    try:
        import import_export  # noqa: F401
    except ImportError:
        return False
    return True


def import_ie(path: Path, *, rows: int | None = None, rollback: bool = False) -> dict:
    """django-import-export (bench/ie_resource.py) on the first ``rows`` rows."""
    import tablib

    from bench.ie_resource import StudentResource

    text = path.read_text(encoding="utf-8-sig")
    if rows:
        text = "".join(io.StringIO(text).readlines()[: rows + 1])

    def run() -> dict:
        with QueryCounter() as counter:
            started = time.perf_counter()
            dataset = tablib.Dataset().load(text, format="csv")
            result = StudentResource().import_data(dataset, dry_run=False, raise_errors=True, use_transactions=True)
            seconds = time.perf_counter() - started
        if result.has_errors() or result.has_validation_errors():
            raise RuntimeError("django-import-export reported errors")
        return {"seconds": round(seconds, 3), "rows": len(dataset), "queries": counter.count}

    return _maybe_rolled_back(rollback, run)
