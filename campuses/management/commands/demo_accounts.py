"""``manage.py demo_accounts``: print where the demo runs and who can log in.

``make run`` calls it after ``seed_demo --accounts-file var/demo-accounts.json`` and
before starting the processes.  It only reads that JSON file (a list of objects with
``username``, ``password``, ``role``/``role_display`` and ``unit``), so it works
whether the demo was seeded now or earlier; the table keeps a few logins per role.
"""

from __future__ import annotations

import json
import unicodedata
from collections import defaultdict
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

COLUMNS = (("username", "用户名 username"), ("password", "密码 password"), ("role", "角色 role"), ("unit", "单位 unit"))


def _width(text: str) -> int:
    """Terminal columns: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


class Command(BaseCommand):
    help = "Print the demo URL and a table of demo logins read from the accounts file written by seed_demo."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "accounts_file",
            nargs="?",
            type=Path,
            default=Path(settings.VAR_DIR) / "demo-accounts.json",
            help="JSON written by `seed_demo --accounts-file` (default var/demo-accounts.json)",
        )
        parser.add_argument("--url", default="http://127.0.0.1:8000/admin/", help="where the admin is served")
        parser.add_argument("--per-role", type=int, default=3, help="logins shown per role (default 3; 0 = all)")

    def handle(self, *args, accounts_file: Path, url: str, per_role: int, **options) -> None:
        try:
            accounts = json.loads(accounts_file.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise CommandError(
                f"{accounts_file} not found: run `manage.py seed_demo --accounts-file {accounts_file}`"
            ) from exc
        if isinstance(accounts, dict):
            accounts = accounts.get("accounts", [])

        by_role: dict[str, list[dict]] = defaultdict(list)
        for account in accounts:
            by_role[account.get("role_display") or account.get("role", "")].append(account)
        rows = []
        for role, members in by_role.items():
            for account in members[: per_role or None]:
                rows.append(
                    {
                        "username": str(account.get("username", "")),
                        "password": str(account.get("password", "")),
                        "role": role,
                        "unit": str(account.get("unit", "")),
                    }
                )

        widths = {key: max([_width(title)] + [_width(row[key]) for row in rows]) for key, title in COLUMNS}
        out = self.stdout
        out.write("")
        out.write(self.style.SUCCESS(f"同心 Tongxin: {url}"))
        out.write("")
        out.write("  ".join(_pad(title, widths[key]) for key, title in COLUMNS).rstrip())
        out.write("  ".join("-" * widths[key] for key, _title in COLUMNS))
        for row in rows:
            out.write("  ".join(_pad(row[key], widths[key]) for key, _title in COLUMNS).rstrip())
        hidden = len(accounts) - len(rows)
        if hidden > 0:
            out.write(f"... {hidden} more in {accounts_file}")
        out.write("")
