"""``manage.py import_roster FILE``: import a roster (花名册) from the command line.

Runs :func:`students.roster.roster_import` as a given user (``--as-user``, whose
scope limits what may be imported) or, without it, as the operator with full scope.
Progress goes to stderr; the error report is printed as a table (行, 列, 问题); the
command fails when the file has errors and nothing was imported.  Its output is in
Chinese (``LANGUAGE_CODE``), or in English with ``--language en`` — the problems too.
"""

from __future__ import annotations

import time
import unicodedata

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campuses.scoping import Scope, scope_for
from students.roster import STAGE_LABELS, UNIT_LABELS, RosterError, RosterImportResult, roster_import

#: Errors printed at most; the rest are counted.
MAX_PRINTED_ERRORS = 500


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def error_table(errors: list[RosterError], limit: int = MAX_PRINTED_ERRORS) -> str:
    """The errors as an aligned text table, its headers in the active language."""
    shown = errors[:limit]
    row_head, column_head, problem_head = _("行"), _("列"), _("问题")
    lines = [(str(e.row) if e.row else _("文件"), e.column or "-", e.message) for e in shown]
    row_w = max([_width(row_head), *(_width(r) for r, _c, _m in lines)])
    col_w = max([_width(column_head), *(_width(c) for _r, c, _m in lines)])
    out = [
        f"{_pad(row_head, row_w)}  {_pad(column_head, col_w)}  {problem_head}",
        f"{'-' * row_w}  {'-' * col_w}  {'-' * 20}",
    ]
    out += [f"{_pad(r, row_w)}  {_pad(c, col_w)}  {m}" for r, c, m in lines]
    if len(errors) > limit:
        out.append(_("…… 另有 %(n)s 个问题未列出。") % {"n": len(errors) - limit})  # the upload page's words
    return "\n".join(out)


class Command(BaseCommand):
    help = gettext_lazy("导入学生花名册（.xlsx 或 .csv）：默认全部无误才导入；--allow-partial 只导入无误的行。")

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help=gettext_lazy("花名册文件路径（.xlsx 或 .csv）"))
        parser.add_argument(
            "--allow-partial", action="store_true", help=gettext_lazy("只导入没有问题的行，其余行列出问题")
        )
        parser.add_argument(
            "--as-user", metavar="USERNAME", help=gettext_lazy("以该用户的管理范围导入（默认：不限范围）")
        )
        parser.add_argument("--dry-run", action="store_true", help=gettext_lazy("完整校验并演练写入，最后回滚，不保存"))
        parser.add_argument(
            "--language",
            choices=[code for code, _name in settings.LANGUAGES],
            default=settings.LANGUAGE_CODE,
            help=gettext_lazy("输出的语言（默认 %(default)s）"),
        )

    def handle(self, *args, **options) -> None:
        with translation.override(options["language"]):
            self._import(options)

    def _import(self, options: dict) -> None:
        actor = None
        scope = Scope(user_id=None, everything=True)
        if options["as_user"]:
            try:
                actor = get_user_model().objects.get(username=options["as_user"])
            except get_user_model().DoesNotExist as exc:
                raise CommandError(_("用户 %(username)s 不存在") % {"username": options["as_user"]}) from exc
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
            raise CommandError(_("找不到文件：%(path)s") % {"path": options["file"]}) from exc
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from exc
        progress.finish()
        elapsed = time.monotonic() - started

        if result.errors:
            self.stdout.write(
                self.style.WARNING(
                    _("发现 %(count)d 个问题（涉及 %(rows)d 行）：")
                    % {"count": len(result.errors), "rows": result.error_rows}
                )
            )
            self.stdout.write(error_table(result.errors))
        self.stdout.write(self._summary(result, elapsed))
        rows_done = result.created + result.updated + result.unchanged
        if result.errors and not rows_done:
            raise CommandError(
                _("文件有错误，未导入任何数据。请修改后重新导入，或使用 --allow-partial 只导入无误的行。")
            )

    @staticmethod
    def _summary(result: RosterImportResult, elapsed: float) -> str:
        verb = _("演练（未保存）") if result.dry_run else _("导入完成") if result.imported else _("未导入")
        parts = [
            _("新增 %(n)d") % {"n": result.created},
            _("更新 %(n)d") % {"n": result.updated},
            _("未变 %(n)d") % {"n": result.unchanged},
        ]
        if result.skipped:
            parts.append(_("跳过有问题的行 %(n)d") % {"n": result.skipped})
        comma = _("，")
        units = comma.join(f"{UNIT_LABELS[k]} {v}" for k, v in result.units_created.items())
        line = _("%(verb)s：共 %(rows)d 行；%(counts)s") % {
            "verb": verb,
            "rows": result.total_rows,
            "counts": comma.join(parts),
        }
        if units:
            line += _("；新建单位：%(units)s") % {"units": units}
        return line + _("（用时 %(seconds).1f 秒）") % {"seconds": elapsed}


class _Progress:
    """Percent per stage on stderr: one updating line on a terminal, else a line per 10%."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.last: tuple[str, int] | None = None

    def __call__(self, done: int, total: int, stage: str) -> None:
        percent = int(done * 100 / total) if total else 0
        stage = str(STAGE_LABELS.get(stage, stage))
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
