"""Generate a large roster (花名册) for the university already in the database.

Usage (fresh SQLite file, demo tree, then a 100,000-row CSV and XLSX)::

    export SQLITE_PATH=/tmp/roster-bench.sqlite3
    .venv/bin/python manage.py migrate -v0
    .venv/bin/python manage.py seed_demo --students 300
    .venv/bin/python bench/roster_gen.py --rows 100000 --out /tmp/roster
    time .venv/bin/python manage.py import_roster /tmp/roster.csv

Rows spread over the existing classes; each student gets a bed in a new room of an
existing building on the class's campus (so rooms are created too), a valid ID
number, a phone and a place of origin.  ``--change N`` rewrites the phone of every
N-th row, to time a re-import that updates a share of the students.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from campuses.id_numbers import id_check_digit  # noqa: E402
from campuses.models import Building, SchoolClass  # noqa: E402
from students.provinces import PROVINCES  # noqa: E402
from students.roster import HEADERS  # noqa: E402


def _id_number(seq: int, prefix: str) -> str:
    body = f"{prefix}{2004 + seq % 3}{1 + seq % 12:02d}{1 + seq % 28:02d}{seq % 1000:03d}"
    return body + id_check_digit(body)


def rows(n: int, *, change: int = 0):
    classes = list(SchoolClass.objects.select_related("grade__college__campus").order_by("pk"))
    buildings: dict[int, list[Building]] = {}
    for building in Building.objects.order_by("pk"):
        buildings.setdefault(building.campus_id, []).append(building)
    if not classes or not buildings:
        raise SystemExit("no classes or buildings: run seed_demo first")
    for seq in range(1, n + 1):
        klass = classes[seq % len(classes)]
        campus = klass.grade.college.campus
        on_campus = buildings[campus.pk]
        building = on_campus[(seq // 4) % len(on_campus)]
        province = PROVINCES[seq % 31]
        phone = f"13{seq % 7 + 3}{seq:08d}"
        if change and seq % change == 0:
            phone = f"18{seq % 7 + 3}{seq:08d}"
        yield {
            "学号": f"R{seq:09d}",
            "姓名": f"学生{seq}",
            "性别": "男" if seq % 2 else "女",
            "学院": klass.grade.college.name,
            "年级": f"{klass.grade.year}级",
            "班级": klass.name,
            "校区": campus.name,
            "楼宇": building.name,
            "宿舍": f"R{seq // 4:06d}",
            "床位": str(seq % 4 + 1),
            "手机": phone,
            "身份证号": _id_number(seq, f"{province.prefix}0102"),
            "生源地": f"{province.prefix}0102",
            "当前所在地": "在校",
            "学籍状态": "在读",
            "监护人": f"家长{seq}",
            "监护人电话": f"139{seq:08d}",
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", default="/tmp/roster", help="path without extension: writes .csv and .xlsx")
    parser.add_argument("--change", type=int, default=0, help="change the phone of every N-th row")
    parser.add_argument("--no-xlsx", action="store_true")
    args = parser.parse_args()

    started = time.monotonic()
    data = list(rows(args.rows, change=args.change))
    with open(f"{args.out}.csv", "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        writer.writerows([row[h] for h in HEADERS] for row in data)
    print(f"{args.out}.csv: {len(data)} rows in {time.monotonic() - started:.1f}s")
    if not args.no_xlsx:
        from openpyxl import Workbook

        started = time.monotonic()
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("花名册")
        sheet.append(list(HEADERS))
        for row in data:
            sheet.append([row[h] for h in HEADERS])
        workbook.save(f"{args.out}.xlsx")
        print(f"{args.out}.xlsx: {len(data)} rows in {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    main()
