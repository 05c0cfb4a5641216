"""``manage.py seed_demo``: load the demo university (see :mod:`campuses.demo`).

Idempotent for ``make run``: when a university already exists it says so and exits
without changes; ``--reset`` deletes the demo data and builds it again.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from campuses.demo import DEMO_PASSWORD, demo_accounts, demo_counts, demo_exists, demo_reset, demo_seed

_LABELS = (
    ("campuses", "校区"),
    ("colleges", "学院"),
    ("grades", "年级"),
    ("classes", "班级"),
    ("buildings", "楼宇"),
    ("rooms", "宿舍"),
    ("beds", "床位"),
    ("students", "学生"),
    ("users", "账号"),
    ("assignments", "职务分工"),
    ("tags", "重点关注"),
)


class Command(BaseCommand):
    help = (
        "Build the demo university 同心大学 (three campuses, colleges, grades, classes, dorms, "
        "students with logins, staff for every role).  Demo databases only: every account "
        f"gets the same password (default {DEMO_PASSWORD})."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--students", type=int, default=3000, help="number of students (default 3000)")
        parser.add_argument("--accounts-file", type=Path, help="write the demo logins as JSON to this path")
        parser.add_argument(
            "--reset", action="store_true", help="delete the existing organisation tree, students and accounts first"
        )
        parser.add_argument("--seed", type=int, default=2026, help="random seed (same seed, same university)")
        parser.add_argument(
            "--password", default=DEMO_PASSWORD, help=f"password of every demo account ({DEMO_PASSWORD})"
        )

    def handle(self, *args, **options) -> None:
        if options["students"] < 1:
            raise CommandError("--students must be at least 1")
        password = options["password"]
        if demo_exists() and not options["reset"]:
            counts = demo_counts()
            self.stdout.write(
                f"已有学校数据 (学生 {counts['students']:,}), 未做任何修改; 重建请加 --reset "
                "(a university already exists, nothing changed)."
            )
            self._write_accounts(options["accounts_file"], password)
            return
        with transaction.atomic():
            if options["reset"]:
                demo_reset()
            result = demo_seed(students=options["students"], seed=options["seed"], password=password)
        counts = result.counts
        summary = ", ".join(f"{label} {counts[key]:,}" for key, label in _LABELS if key in counts)
        self.stdout.write(self.style.SUCCESS(f"演示数据已生成 ({result.seconds:.1f} s): {summary}"))
        self.stdout.write(f"所有演示账号密码 (demo password): {password}; 超级管理员: admin")
        self._write_accounts(options["accounts_file"], password)

    def _write_accounts(self, path: Path | None, password: str) -> None:
        if path is None:
            return
        accounts = demo_accounts(password=password)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(accounts, ensure_ascii=False, indent=1), encoding="utf-8")
        self.stdout.write(f"账号清单 (accounts file): {path} ({len(accounts)} entries)")
