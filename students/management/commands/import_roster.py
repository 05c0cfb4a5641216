"""``manage.py import_roster FILE``: import a roster (花名册) from the command line.

Runs :func:`students.roster.roster_import` as a given user (``--as-user``, whose
scope limits what may be imported) or, without it, as the operator with full scope.
Progress goes to stderr; the error report is printed as a table (行, 列, 问题); the
command fails when the file has errors and nothing was imported.
"""

from __future__ import annotations

import time
import unicodedata

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from campuses.scoping import Scope, scope_for
from students.roster import UNIT_LABELS, RosterError, RosterImportResult, roster_import

#: Errors printed at most; the rest are counted.
MAX_PRINTED_ERRORS = 500


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def error_table(errors: list[RosterError], limit: int = MAX_PRINTED_ERRORS) -> str:
    """The errors as an aligned text table with Chinese headers."""
    shown = errors[:limit]
    lines = [(str(e.row) if e.row else "文件", e.column or "-", e.message) for e in shown]
    row_w = max([_width("行"), *(_width(r) for r, _, _ in lines)])
    col_w = max([_width("列"), *(_width(c) for _, c, _ in lines)])
    out = [f"{_pad('行', row_w)}  {_pad('列', col_w)}  问题", f"{'-' * row_w}  {'-' * col_w}  {'-' * 20}"]
    out += [f"{_pad(r, row_w)}  {_pad(c, col_w)}  {m}" for r, c, m in lines]
    if len(errors) > limit:
        out.append(f"…… 另有 {len(errors) - limit} 个问题未列出")
    return "\n".join(out)


class Command(BaseCommand):
    help = "导入学生花名册（.xlsx 或 .csv）：默认全部无误才导入；--allow-partial 只导入无误的行。"

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="花名册文件路径（.xlsx 或 .csv）")
        parser.add_argument("--allow-partial", action="store_true", help="只导入没有问题的行，其余行列出问题")
        parser.add_argument("--as-user", metavar="USERNAME", help="以该用户的管理范围导入（默认：不限范围）")
        parser.add_argument("--dry-run", action="store_true", help="完整校验并演练写入，最后回滚，不保存")

    def handle(self, *args, **options) -> None:
        actor = None
        scope = Scope(user_id=None, everything=True)
        if options["as_user"]:
            try:
                actor = get_user_model().objects.get(username=options["as_user"])
            except get_user_model().DoesNotExist as exc:
                raise CommandError(f"用户 {options['as_user']} 不存在") from exc
            scope = scope_for(actor)

        started = time.monotonic()
        progress = _Progress(self.stderr)
        try:
            result = roster_import(
                source=options["file"],
                scope=scope,
                actor=actor,
                allow_partial=options["allow_partial"],
                dry_run=options["dry_run"],
                progress=progress,
            )
        except FileNotFoundError as exc:
            raise CommandError(f"找不到文件：{options['file']}") from exc
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from exc
        progress.finish()
        elapsed = time.monotonic() - started

        if result.errors:
            self.stdout.write(self.style.WARNING(f"发现 {len(result.errors)} 个问题（涉及 {result.error_rows} 行）："))
            self.stdout.write(error_table(result.errors))
        self.stdout.write(self._summary(result, elapsed))
        rows_done = result.created + result.updated + result.unchanged
        if result.errors and not rows_done:
            raise CommandError("文件有错误，未导入任何数据。请修改后重新导入，或使用 --allow-partial 只导入无误的行。")

    @staticmethod
    def _summary(result: RosterImportResult, elapsed: float) -> str:
        verb = "演练（未保存）" if result.dry_run else "导入完成" if result.imported else "未导入"
        parts = [f"新增 {result.created}", f"更新 {result.updated}", f"未变 {result.unchanged}"]
        if result.skipped:
            parts.append(f"跳过有问题的行 {result.skipped}")
        units = "，".join(f"{UNIT_LABELS[k]} {v}" for k, v in result.units_created.items())
        line = f"{verb}：共 {result.total_rows} 行；" + "，".join(parts)
        if units:
            line += f"；新建单位：{units}"
        return f"{line}（用时 {elapsed:.1f} 秒）"


class _Progress:
    """Percent per stage on stderr: one updating line on a terminal, else a line per 10%."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.last: tuple[str, int] | None = None

    def __call__(self, done: int, total: int, stage: str) -> None:
        percent = int(done * 100 / total) if total else 0
        if self.tty:
            bar = "#" * (percent // 5)
            self.stream.write(f"\r{stage} [{bar:<20}] {percent:3d}% ({done}/{total})", ending="")
            self.stream.flush()
        else:
            key = (stage, percent // 10)
            if key != self.last:
                self.stream.write(f"{stage} {percent}% ({done}/{total})")
        self.last = (stage, percent // 10)

    def finish(self) -> None:
        if self.tty:
            self.stream.write("", ending="\n")
