"""Roster import and export (花名册导入导出).

Product rules implemented here:

- A roster is an ``.xlsx`` or ``.csv`` file with Chinese column headers (:data:`HEADERS`);
  学号, ID-card numbers and phone numbers are text and keep their leading zeros; an ID
  that Excel has turned into a number has lost digits and is refused, never guessed.
- Every row is validated and *all* problems are reported as (row as the user sees it
  in the file, column, message).  By default a file with any problem imports nothing;
  ``allow_partial`` imports the clean rows only.
- An importer acts inside their scope (:func:`campuses.scoping.scope_for`): they may
  place students only into units they hold an import duty for, and may never overwrite
  a student outside it.  Missing colleges, grades, classes, buildings and rooms are
  created; campuses must exist.
- Re-importing updates students by 学号; unchanged students are not rewritten.  Every
  write goes through django-simple-history's bulk helpers so the change history is kept.
- The whole import is set-based: a fixed handful of queries to load the tree, chunked
  lookups of existing students and batched writes; never one query per row.
- An export contains only the students the user may see, with phone and ID numbers
  masked unless :meth:`campuses.scoping.Scope.annotate_pii` says otherwise, and can be
  re-imported by someone entitled.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gc
import io
import logging
import re
import unicodedata
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, QuerySet, Value
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campuses.bulk import insert_history_of, insert_rows, one_of, update_objects
from campuses.id_numbers import id_number_valid
from campuses.models import Building, Campus, College, Grade, Role, Room, SchoolClass
from campuses.scoping import Scope
from students.masking import mask_id_number, mask_phone
from students.models import EnrolmentStatus, Gender, Student, Whereabouts
from students.provinces import HometownError, hometown_label, resolve_hometown
from students.xlsx import XlsxWorkbook

logger = logging.getLogger("tongxin.roster")

# ---------------------------------------------------------------------------
# The file format
# ---------------------------------------------------------------------------
H_NUMBER = "学号"
H_NAME = "姓名"
H_GENDER = "性别"
H_COLLEGE = "学院"
H_GRADE = "年级"
H_CLASS = "班级"
H_CAMPUS = "校区"
H_BUILDING = "楼宇"
H_ROOM = "宿舍"
H_BED = "床位"
H_PHONE = "手机"
H_ID = "身份证号"
H_HOMETOWN = "生源地"
H_WHEREABOUTS = "当前所在地"
H_STATUS = "学籍状态"
H_GUARDIAN = "监护人"
H_GUARDIAN_PHONE = "监护人电话"

#: Every column, in the order an export writes them.
HEADERS: tuple[str, ...] = (
    H_NUMBER,
    H_NAME,
    H_GENDER,
    H_COLLEGE,
    H_GRADE,
    H_CLASS,
    H_CAMPUS,
    H_BUILDING,
    H_ROOM,
    H_BED,
    H_PHONE,
    H_ID,
    H_HOMETOWN,
    H_WHEREABOUTS,
    H_STATUS,
    H_GUARDIAN,
    H_GUARDIAN_PHONE,
)
REQUIRED_HEADERS: tuple[str, ...] = (H_NUMBER, H_NAME, H_GENDER, H_CAMPUS, H_COLLEGE, H_GRADE, H_CLASS)
DORM_HEADERS: tuple[str, ...] = (H_BUILDING, H_ROOM, H_BED)
#: Columns that hold digits but are text: Excel must not turn them into numbers.
TEXT_NUMBER_HEADERS = frozenset({H_NUMBER, H_PHONE, H_ID, H_GUARDIAN_PHONE})
#: Columns that may hold a masked value (from an export) meaning "keep what is stored".
MASKABLE_HEADERS = {H_PHONE: "phone", H_ID: "id_number", H_GUARDIAN_PHONE: "guardian_phone"}
#: Header spellings seen in real rosters, read as the canonical header.
HEADER_ALIASES = {
    "手机号": H_PHONE,
    "手机号码": H_PHONE,
    "联系电话": H_PHONE,
    "身份证": H_ID,
    "身份证号码": H_ID,
    "楼栋": H_BUILDING,
    "宿舍楼": H_BUILDING,
    "宿舍号": H_ROOM,
    "房间号": H_ROOM,
    "床号": H_BED,
    "床位号": H_BED,
    "监护人姓名": H_GUARDIAN,
    "监护人手机": H_GUARDIAN_PHONE,
}

#: Roles allowed to import a roster (a superuser always may).
IMPORT_ROLES = frozenset({Role.UNIVERSITY_ADMIN, Role.COLLEGE_ADMIN, Role.CAMPUS_COORDINATOR})
#: Roles allowed to export the roster of their scope.
EXPORT_ROLES = IMPORT_ROLES | {Role.COUNSELLOR}

#: The change reason on the history rows an import writes.
REASON = "花名册导入"

STAGE_READ = "读取"
STAGE_CHECK = "校验"
STAGE_WRITE = "写入"
#: The stages as shown to the importer (the constants above are what ``progress`` gets).
STAGE_LABELS = {
    STAGE_READ: gettext_lazy("读取"),
    STAGE_CHECK: gettext_lazy("校验"),
    STAGE_WRITE: gettext_lazy("写入"),
}

_STUDENT_NUMBER_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]*$")
# ASCII digits only: a phone or ID number in another script's digits is not one.
_PHONE_RE = re.compile(r"^1[3-9]\d{9}$", re.ASCII)
_GUARDIAN_PHONE_RE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$", re.ASCII)
_GRADE_RE = re.compile(r"^(\d{4})级?$")
# A sheet's error cells (t="e": #N/A, #REF!… a formula left), found in its XML.
_ERROR_CELL_RE = re.compile(rb'<(?:\w+:)?c\b[^>]*\bt="e"[^>]*>')
_CELL_END_RE = re.compile(rb"</(?:\w+:)?c>")
_CELL_REF_RE = re.compile(rb'\br="([A-Z]+)(\d+)"')
_CELL_VALUE_RE = re.compile(rb"<(?:\w+:)?v>([^<]*)<")
_SCIENTIFIC_RE = re.compile(r"^\d+(\.\d+)?[eE][+-]?\d+$")
_EXCEL_DIGITS = 15  # Excel keeps 15 significant digits of a number
_AS_TEXT_HINT = gettext_lazy("请将该列单元格格式设置为“文本”后重新填写")

ProgressCallback = Callable[[int, int, str], None]


@dataclass(frozen=True)
class RosterError:
    """One problem in a roster: ``row`` as the user sees it (the header is row 1; 0 for
    the file as a whole), the column header and a message in Chinese."""

    row: int
    column: str
    message: str


@dataclass
class RosterImportResult:
    """What an import did (or, with errors and no ``allow_partial``, would not do)."""

    total_rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: list[RosterError] = field(default_factory=list)
    #: Units created, by model name: college, grade, school_class, building, room.
    units_created: dict[str, int] = field(default_factory=dict)
    imported: bool = False
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def error_rows(self) -> int:
        return len({e.row for e in self.errors})


UNIT_LABELS = {
    "college": gettext_lazy("学院"),
    "grade": gettext_lazy("年级"),
    "school_class": gettext_lazy("班级"),
    "building": gettext_lazy("楼宇"),
    "room": gettext_lazy("宿舍"),
}


def may_import(scope: Scope) -> bool:
    """May the holder of ``scope`` import rosters at all?"""
    return scope.everything or scope.has_role(*IMPORT_ROLES)


def may_export(scope: Scope) -> bool:
    """May the holder of ``scope`` export the roster of their scope?"""
    return scope.everything or scope.has_role(*EXPORT_ROLES)


def _batch_size() -> int:
    return int(settings.TONGXIN["BULK_BATCH_SIZE"])


def _lookup_chunk() -> int:
    """How many values one ``__in`` lookup may carry on this database."""
    limit = connection.features.max_query_params or _batch_size()
    return max(1, min(_batch_size(), limit - 10))


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _notify(progress: ProgressCallback | None, done: int, total: int, stage: str) -> None:
    if progress is not None:
        progress(done, total, stage)


# ---------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------
@dataclass
class ParsedRoster:
    """The raw text of a roster: ``columns`` maps canonical header → column index;
    ``rows`` are (row number in the file, cell texts)."""

    columns: dict[str, int] = field(default_factory=dict)
    header_row: int = 1
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    errors: list[RosterError] = field(default_factory=list)
    fatal: bool = False


def _normalise_header(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\ufeff", "").replace("\u3000", " ").strip().strip("*＊").strip()
    return HEADER_ALIASES.get(text, text)


def _digits_text(value: str) -> str:
    """A number typed by a person: full-width digits folded (１３８ → 138), spaces removed."""
    return unicodedata.normalize("NFKC", value).replace(" ", "")


def _clean_text(value: str) -> str:
    text = value.replace("\u3000", " ").strip()
    # Our own export escapes formulas with a leading quote: read it back as written.
    if len(text) > 1 and text[0] == "'" and text[1] in "=+-@":
        text = text[1:]
    return text


def _number_text(value: int | float | Decimal) -> str:
    """A number as the digits a person typed: no '.0', no exponent."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    return format(Decimal(repr(value)) if isinstance(value, float) else value, "f")


def _significant_digits(value: int | float | Decimal) -> int:
    digits = _number_text(abs(value)).replace(".", "").lstrip("0")
    return len(digits)


def _xlsx_cell_text(value: Any, header: str | None) -> tuple[str, str | None]:
    """Text of one xlsx cell and, for a text column stored as an imprecise number, an error."""
    if value is None:
        return "", None
    if isinstance(value, bool):
        return ("是" if value else "否"), None
    if isinstance(value, int | float | Decimal):
        if header in TEXT_NUMBER_HEADERS and _significant_digits(value) > _EXCEL_DIGITS:
            return _number_text(value), _("该单元格被 Excel 存成了数字，超过15位的数字已丢失精度；%(hint)s") % {
                "hint": _AS_TEXT_HINT
            }
        return _number_text(value), None
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" "), None
    if isinstance(value, dt.date | dt.time):
        return value.isoformat(), None
    return _clean_text(str(value)), None


def _find_header(rows: Iterable[tuple[int, list[str]]], parsed: ParsedRoster) -> bool:
    """Find the header row (the first of the first ten rows naming 学号); fills ``columns``."""
    for number, cells in rows:
        names = [_normalise_header(c) for c in cells]
        if H_NUMBER not in names:
            if number >= 10:
                break
            continue
        parsed.header_row = number
        seen: dict[str, int] = {}
        for index, name in enumerate(names):
            if name not in HEADERS:
                continue  # unknown columns are ignored
            if name in seen:
                parsed.errors.append(RosterError(number, name, _("表头中“%(name)s”列出现了不止一次") % {"name": name}))
                parsed.fatal = True
            seen[name] = index
        parsed.columns = seen
        missing = [h for h in REQUIRED_HEADERS if h not in seen]
        if missing:
            parsed.errors.append(
                RosterError(
                    number,
                    "、".join(missing),
                    _("缺少必填列：%(missing)s（表头须含 %(required)s）")
                    % {"missing": "、".join(missing), "required": "、".join(REQUIRED_HEADERS)},
                )
            )
            parsed.fatal = True
        partial_dorm = [h for h in (H_BUILDING, H_ROOM) if h not in seen]
        if any(h in seen for h in DORM_HEADERS) and partial_dorm:
            parsed.errors.append(
                RosterError(number, "、".join(partial_dorm), _("填写住宿信息须同时包含“楼宇”和“宿舍”两列"))
            )
            parsed.fatal = True
        return True
    parsed.errors.append(RosterError(0, "", _("未找到表头行：前10行中须有一行含“学号”等列名")))
    parsed.fatal = True
    return False


def _read_csv(data: bytes, parsed: ParsedRoster, progress: ProgressCallback | None) -> None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel in China saves "CSV" in the ANSI code page (GBK); GB18030 is its superset.
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            parsed.errors.append(RosterError(0, "", _("无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV")))
            parsed.fatal = True
            return
    total = text.count("\n") + 1
    # Rows are numbered by record, as Excel shows them (a quoted cell may span lines).
    records = enumerate(csv.reader(io.StringIO(text, newline="")), 1)
    if not _find_header(_until_header(records), parsed):
        return
    step = _batch_size()
    numeric = [(h, parsed.columns[h]) for h in TEXT_NUMBER_HEADERS if h in parsed.columns]
    # A full-width space (U+3000) inside a cell reads as a space (strip() trims it at the
    # ends anyway); most files hold none, and their cells are only trimmed.
    ideographic = "\u3000" in text
    for number, record in records:
        cells = [c.replace("\u3000", " ").strip() for c in record] if ideographic else list(map(str.strip, record))
        if "'" in "".join(cells):  # our own export's formula escape: rare, so handled apart
            cells = [_clean_text(c) for c in cells]
        if any(cells):
            parsed.rows.append((number, cells))
            for header, index in numeric:
                value = cells[index] if index < len(cells) else ""
                if value and _SCIENTIFIC_RE.match(value):
                    parsed.errors.append(
                        RosterError(
                            number,
                            header,
                            _("“%(value)s”是科学计数法，原号码已丢失；%(hint)s")
                            % {"value": value, "hint": _AS_TEXT_HINT},
                        )
                    )
        if number % step == 0:
            _notify(progress, number, total, STAGE_READ)
    _notify(progress, total, total, STAGE_READ)


def _until_header(records: Iterator[tuple[int, Any]]) -> list[tuple[int, list[str]]]:
    """Consume rows up to the header row (at most ten); the iterator then stands on data."""
    head = []
    for number, values in records:
        cells = ["" if v is None else str(v) for v in values]
        head.append((number, cells))
        if H_NUMBER in (_normalise_header(c) for c in cells) or number >= 10:
            break
    return head


def _local(name: str) -> str:
    """An XML tag or attribute name without its namespace."""
    return name.rsplit("}", 1)[-1]


def _active_sheet(archive: zipfile.ZipFile, count: int) -> tuple[int, str | None]:
    """The sheet the workbook opens on — its index (``activeTab`` of the first
    ``<workbookView>``, as openpyxl's ``workbook.active``: the sheet a person saved the
    roster on) and its part in the package (None where the package does not say)."""
    try:  # two small parts; expat (2.4 and later) refuses entity-expansion bombs
        book = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, zipfile.BadZipFile, ElementTree.ParseError):
        return 0, None
    views = [el for el in book.iter() if _local(el.tag) == "workbookView"]
    try:
        index = int(views[0].get("activeTab", 0)) if views else 0
    except ValueError:
        index = 0
    index = index if 0 <= index < count else 0
    sheets = [el for el in book.iter() if _local(el.tag) == "sheet"]
    if index >= len(sheets):
        return index, None
    rel_id = next((value for key, value in sheets[index].attrib.items() if _local(key) == "id"), None)
    targets = {el.get("Id"): el.get("Target") for el in rels.iter() if _local(el.tag) == "Relationship"}
    target = targets.get(rel_id)
    if not target:
        return index, None
    return index, target.lstrip("/") if target.startswith("/") else f"xl/{target}"


def _error_cells(archive: zipfile.ZipFile, part: str) -> dict[int, dict[int, str]]:
    """The error cells of the sheet ``part`` (a formula's #N/A, #REF!…) by row number
    and 0-based column, with their codes: python-calamine reads them as empty cells, and
    an empty cell would pass as a blank (a re-import blanking a stored phone).  The XML
    (95 MiB for 100,000 rows) is streamed to look for one; only a sheet that has one is
    read whole."""
    found: dict[int, dict[int, str]] = defaultdict(dict)
    marker, tail = b't="e"', b""
    with archive.open(part) as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            if marker in tail + chunk[: len(marker)] or marker in chunk:
                break
            tail = chunk[-len(marker) :]
        else:
            return found
    xml = archive.read(part)
    for match in _ERROR_CELL_RE.finditer(xml):
        ref = _CELL_REF_RE.search(match.group())
        if ref is None:
            continue
        code = b""
        if not match.group().endswith(b"/>"):
            end = _CELL_END_RE.search(xml, match.end())
            value = _CELL_VALUE_RE.search(xml, match.end(), end.start() if end else len(xml))
            code = value.group(1) if value else b""
        column = 0
        for letter in ref.group(1):
            column = column * 26 + letter - 64
        found[int(ref.group(2))][column - 1] = code.decode("utf-8", "replace") or "#ERROR"
    return found


def _read_xlsx(source: IO[bytes], parsed: ParsedRoster, progress: ProgressCallback | None) -> None:
    """The active sheet's cells, read by python-calamine (Rust's calamine): 1.7 s for a
    100,000-row roster where openpyxl's read-only mode took 28 s (bench/README.md, 5b).
    Values come as text, float, bool, date or datetime — an empty cell as "", and an
    error cell as well, so those are found in the sheet's XML (:func:`_error_cells`) and
    refused; rows are numbered as the sheet numbers them (an empty row above the header
    still counts)."""
    from python_calamine import CalamineError, CalamineWorkbook

    data = source.read()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
            names = workbook.sheet_names
            if not names:
                raise CalamineError("no sheet")
            index, part = _active_sheet(archive, len(names))
            sheet = workbook.get_sheet_by_index(index)
            spoiled = _error_cells(archive, part) if part in archive.namelist() else {}
    except (zipfile.BadZipFile, CalamineError, OSError, ValueError) as exc:
        parsed.errors.append(
            RosterError(
                0, "", _("无法读取 Excel 文件（%(error)s），请确认是 .xlsx 格式") % {"error": exc.__class__.__name__}
            )
        )
        parsed.fatal = True
        return
    try:
        total = sheet.total_height or 0
        records = enumerate(sheet.iter_rows(), 1)
        if not _find_header(_until_header(records), parsed):
            return
        header_of = {index: header for header, index in parsed.columns.items()}
        first_column = sheet.start[1] if sheet.start else 0  # rows come whole from the left of the table
        step = _batch_size()
        for number, values in records:
            cells = []
            for index, value in enumerate(values):
                if type(value) is str:  # most cells are text or empty: no call for them
                    if value:
                        value = value.replace("\u3000", " ").strip()
                        if value[:1] == "'":
                            value = _clean_text(value)
                    cells.append(value)
                    continue
                text, problem = _xlsx_cell_text(value, header_of.get(index))
                if problem is not None:
                    parsed.errors.append(RosterError(number, header_of[index], problem))
                cells.append(text)
            for column, code in spoiled.get(number, {}).items():
                index = column - first_column
                if index in header_of and index < len(cells):
                    cells[index] = code  # never a blank
                    parsed.errors.append(
                        RosterError(
                            number, header_of[index], _("单元格是公式错误 %(code)s，请改为实际的值") % {"code": code}
                        )
                    )
            if any(cells):
                parsed.rows.append((number, cells))
            if number % step == 0:
                _notify(progress, number, max(total, number), STAGE_READ)
        _notify(progress, total, total, STAGE_READ)
    finally:
        workbook.close()


def roster_parse(
    *, source: IO[bytes] | str | Path, filename: str = "", progress: ProgressCallback | None = None
) -> ParsedRoster:
    """Read a roster file (``.xlsx`` or ``.csv``) into text cells and find its columns.

    ``source`` is a path or a binary file object; ``filename`` (or the path) tells the
    format, falling back to sniffing the zip signature of ``.xlsx``.  Values are never
    read through a float: CSV cells are kept as written; an xlsx number is written back
    without ``.0`` or exponent, and a text column holding a number with more than 15
    significant digits (an ID card number Excel has already rounded) is an error."""
    parsed = ParsedRoster()
    if isinstance(source, str | Path):
        filename = filename or str(source)
        with open(source, "rb") as handle:
            return roster_parse(source=handle, filename=filename, progress=progress)
    suffix = Path(filename).suffix.lower()
    head = source.read(4)
    source.seek(0)
    if suffix == ".xls" or head.startswith(b"\xd0\xcf\x11\xe0"):
        parsed.errors.append(RosterError(0, "", _("不支持旧版 .xls 文件，请在 Excel 中另存为 .xlsx")))
        parsed.fatal = True
    elif suffix in {".xlsx", ".xlsm"} or head.startswith(b"PK\x03\x04"):
        _read_xlsx(source, parsed, progress)
    else:
        _read_csv(source.read(), parsed, progress)
    return parsed


# ---------------------------------------------------------------------------
# Validating rows
# ---------------------------------------------------------------------------
def _labels(choices: type) -> dict[str, str]:
    with translation.override("zh-hans"):
        mapping = {str(label): value for value, label in choices.choices}
    mapping.update({value: value for value in choices.values})
    return mapping


def _max_length(name: str) -> int:
    return Student._meta.get_field(name).max_length


UnitRef = int | tuple  # an existing unit's id, or the natural key of one to create


class _Row:
    """One data row on its way into the database."""

    __slots__ = (
        "bed",
        "building",
        "campus_id",
        "college",
        "errors",
        "existing",
        "fields",
        "grade",
        "masked",
        "number",
        "room",
        "school_class",
        "student_number",
    )

    def __init__(self, number: int) -> None:
        self.number = number
        self.errors: list[RosterError] = []
        self.fields: dict[str, Any] = {}
        self.masked: dict[str, str] = {}
        self.student_number = ""
        self.campus_id: int | None = None
        self.college: UnitRef | None = None
        self.grade: UnitRef | None = None
        self.school_class: UnitRef | None = None
        self.building: UnitRef | None = None
        self.room: UnitRef | None = None
        self.bed = ""
        self.existing: Student | None = None

    def error(self, column: str, message: str) -> None:
        self.errors.append(RosterError(self.number, column, message))

    @property
    def clean(self) -> bool:
        return not self.errors

    @property
    def bed_key(self) -> tuple | None:
        return (self.room, self.bed) if self.room is not None and self.bed else None


class _Validator:
    """Field checks that need no database: one call per row."""

    def __init__(self, parsed: ParsedRoster) -> None:
        self.parsed = parsed
        self.has = set(parsed.columns)
        self.whereabouts = _labels(Whereabouts)
        self.status = _labels(EnrolmentStatus)
        self.genders = {"男": Gender.MALE, "女": Gender.FEMALE}
        self.len_name = _max_length("name")
        self.len_number = _max_length("student_number")
        self.len_bed = _max_length("bed")
        self.len_guardian = _max_length("guardian_name")
        self.len_room = Room._meta.get_field("number").max_length
        self.len_unit = College._meta.get_field("name").max_length
        # The phone columns present, with their hints translated once (not per row: two
        # lookups in the catalogue for every row were a tenth of a 100,000-row import).
        self.phones = [
            (header, name, pattern, hint)
            for header, name, pattern, hint in (
                (H_PHONE, "phone", _PHONE_RE, _("应为11位手机号")),
                (H_GUARDIAN_PHONE, "guardian_phone", _GUARDIAN_PHONE_RE, _("应为11位手机号或带区号的固定电话")),
            )
            if header in self.has
        ]

    def row(self, number: int, cells: list[str]) -> tuple[_Row, dict[str, str]]:
        n = len(cells)
        got = {header: cells[i] for header, i in self.parsed.columns.items() if i < n}  # the row's cells by header
        row = _Row(number)
        units: dict[str, str] = {}
        for header in REQUIRED_HEADERS:
            if not got.get(header, ""):
                row.error(header, _("必填项为空"))
        value = _digits_text(got.get(H_NUMBER, ""))
        if value:
            if len(value) > self.len_number or not _STUDENT_NUMBER_RE.match(value):
                row.error(
                    H_NUMBER,
                    _("学号“%(value)s”格式不对：只能含字母、数字、-、_，最长%(max)s位")
                    % {"value": value, "max": self.len_number},
                )
            row.student_number = value
        value = got.get(H_NAME, "")
        if len(value) > self.len_name:
            row.error(H_NAME, _("姓名超过%(max)s个字") % {"max": self.len_name})
        row.fields["name"] = value
        value = got.get(H_GENDER, "")
        if value:
            if value in self.genders:
                row.fields["gender"] = self.genders[value]
            else:
                row.error(H_GENDER, _("性别应为“男”或“女”，不是“%(value)s”") % {"value": value})
        value = got.get(H_GRADE, "")
        if value:
            match = _GRADE_RE.match(value)
            if not match or not 1950 <= int(match.group(1)) <= 2100:
                row.error(H_GRADE, _("年级应写成“2024级”或“2024”，不是“%(value)s”") % {"value": value})
            else:
                units[H_GRADE] = match.group(1)
        for header in (H_CAMPUS, H_COLLEGE, H_CLASS):
            value = got.get(header, "")
            if len(value) > self.len_unit:
                row.error(header, _("名称超过%(max)s个字") % {"max": self.len_unit})
            units[header] = value
        if H_BUILDING in self.has:
            self._dorm(row, got, units)
        self._contact(row, got)
        if H_HOMETOWN in self.has:
            try:
                province, city = resolve_hometown(got.get(H_HOMETOWN, ""))
            except HometownError as exc:
                row.error(
                    H_HOMETOWN, _("“%(value)s”无法识别：%(error)s") % {"value": got.get(H_HOMETOWN, ""), "error": exc}
                )
            else:
                row.fields["hometown_province"] = province
                row.fields["hometown_city"] = city
        for header, name, labels in (
            (H_WHEREABOUTS, "whereabouts", self.whereabouts),
            (H_STATUS, "enrolment_status", self.status),
        ):
            if header not in self.has:
                continue
            value = got.get(header, "")
            if not value:
                continue  # blank: keep the stored value, or the default for a new student
            if value in labels:
                row.fields[name] = labels[value]
            else:
                allowed = "、".join(k for k in labels if not k.isascii())
                row.error(
                    header,
                    _("“%(value)s”不是有效的%(column)s，可选：%(allowed)s")
                    % {"value": value, "column": header, "allowed": allowed},
                )
        if H_GUARDIAN in self.has:
            value = got.get(H_GUARDIAN, "")
            if len(value) > self.len_guardian:
                row.error(H_GUARDIAN, _("监护人姓名超过%(max)s个字") % {"max": self.len_guardian})
            row.fields["guardian_name"] = value
        return row, units

    def _dorm(self, row: _Row, got: dict[str, str], units: dict[str, str]) -> None:
        building, room, bed = got.get(H_BUILDING, ""), got.get(H_ROOM, ""), got.get(H_BED, "")
        if building and not room:
            row.error(H_ROOM, _("填写了楼宇但宿舍为空"))
        if room and not building:
            row.error(H_BUILDING, _("填写了宿舍但楼宇为空"))
        if bed and not room:
            row.error(H_BED, _("填写了床位但宿舍为空"))
        if len(room) > self.len_room:
            row.error(H_ROOM, _("宿舍号超过%(max)s个字符") % {"max": self.len_room})
        if len(bed) > self.len_bed:
            row.error(H_BED, _("床位超过%(max)s个字符") % {"max": self.len_bed})
        if len(building) > self.len_unit:
            row.error(H_BUILDING, _("楼宇名称超过%(max)s个字") % {"max": self.len_unit})
        units[H_BUILDING], units[H_ROOM] = building, room
        row.bed = bed

    def _contact(self, row: _Row, got: dict[str, str]) -> None:
        for header, name, pattern, hint in self.phones:
            value = _digits_text(got.get(header, ""))
            if header == H_PHONE:
                value = value.replace("-", "")  # 138-1234-5678
            if "*" in value:
                row.masked[name] = value
            elif value and not pattern.match(value):
                row.error(header, f"“{value}”{hint}")
            else:
                row.fields[name] = value
        if H_ID in self.has:
            value = _digits_text(got.get(H_ID, "")).upper()
            if "*" in value:
                row.masked["id_number"] = value
            elif value and not id_number_valid(value):
                if len(value) != 18:
                    row.error(
                        H_ID, _("身份证号应为18位，“%(value)s”是%(length)s位") % {"value": value, "length": len(value)}
                    )
                else:
                    row.error(H_ID, _("身份证号“%(value)s”校验位或出生日期不正确") % {"value": value})
            else:
                row.fields["id_number"] = value


def _check_duplicate_numbers(rows: list[_Row]) -> None:
    """Flag every row sharing its 学号 with another row of the file."""
    by_number: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        if row.student_number:
            by_number[row.student_number].append(row)
    for number, group in by_number.items():
        if len(group) > 1:
            lines = "、".join(str(r.number) for r in group)
            for row in group:
                row.error(
                    H_NUMBER,
                    _("学号 %(number)s 在文件中重复出现（第 %(lines)s 行）") % {"number": number, "lines": lines},
                )


def _check_duplicate_beds(rows: list[_Row], labels: dict[int, str]) -> None:
    """Flag every row given the same (宿舍, 床位) as another row of the file; rooms are
    compared once resolved, so a building named by code and by name is one building."""
    by_bed: dict[tuple, list[_Row]] = defaultdict(list)
    for row in rows:
        if row.bed_key is not None:
            by_bed[row.bed_key].append(row)
    for (_room, bed), group in by_bed.items():
        if len(group) > 1:
            lines = "、".join(str(r.number) for r in group)
            for row in group:
                row.error(
                    H_BED,
                    _("%(room)s 的床位 %(bed)s 在文件中被分配了多次（第 %(lines)s 行）")
                    % {"room": labels[row.number], "bed": bed, "lines": lines},
                )


# ---------------------------------------------------------------------------
# The organisation tree, loaded once
# ---------------------------------------------------------------------------
class _Tree:
    """The units of the campuses a file names, in dicts keyed the way rows name them,
    plus what the importer's scope covers.  A fixed number of queries."""

    def __init__(self, scope: Scope, campus_labels: set[str]) -> None:
        self.campus_by_label: dict[str, list[int]] = defaultdict(list)
        self.campus_university: dict[int, int] = {}
        self.campus_code: dict[int, str] = {}
        for pk, code, name, university_id in Campus.objects.values_list("id", "code", "name", "university_id"):
            self.campus_university[pk] = university_id
            self.campus_code[pk] = code
            for label in {code, name}:
                if label in campus_labels:
                    self.campus_by_label[label].append(pk)
        campus_ids = sorted({pk for ids in self.campus_by_label.values() for pk in ids})
        self.college: dict[tuple[int, str], int] = {}
        self.college_campus: dict[int, int] = {}
        self.college_codes: dict[int, set[str]] = defaultdict(set)
        for pk, campus_id, code, name in College.objects.filter(campus_id__in=campus_ids).values_list(
            "id", "campus_id", "code", "name"
        ):
            self.college.setdefault((campus_id, code), pk)
            self.college[(campus_id, name)] = pk
            self.college_campus[pk] = campus_id
            self.college_codes[campus_id].add(code)
        self.grade: dict[tuple[int, int], int] = {}
        self.grade_college: dict[int, int] = {}
        for pk, college_id, year in Grade.objects.filter(college__campus_id__in=campus_ids).values_list(
            "id", "college_id", "year"
        ):
            self.grade[(college_id, year)] = pk
            self.grade_college[pk] = college_id
        self.school_class: dict[tuple[int, str], int] = {}
        self.class_grade: dict[int, int] = {}
        self.class_codes: dict[int, set[str]] = defaultdict(set)
        for pk, grade_id, code, name in SchoolClass.objects.filter(
            grade__college__campus_id__in=campus_ids
        ).values_list("id", "grade_id", "code", "name"):
            self.school_class.setdefault((grade_id, code), pk)
            self.school_class[(grade_id, name)] = pk
            self.class_grade[pk] = grade_id
            self.class_codes[grade_id].add(code)
        self.building: dict[tuple[int, str], int] = {}
        self.building_codes: dict[int, set[str]] = defaultdict(set)
        for pk, campus_id, code, name in Building.objects.filter(campus_id__in=campus_ids).values_list(
            "id", "campus_id", "code", "name"
        ):
            self.building.setdefault((campus_id, code), pk)
            self.building[(campus_id, name)] = pk
            self.building_codes[campus_id].add(code)
        self.room: dict[tuple[int, str], int] = {}
        for pk, building_id, number in Room.objects.filter(building__campus_id__in=campus_ids).values_list(
            "id", "building_id", "number"
        ):
            self.room[(building_id, number)] = pk

        # What the importer may touch: only grants of an import role count.
        self.scope = scope.narrowed(IMPORT_ROLES)
        units = self.scope.units
        self.covered_campuses = set(
            units(Campus, Campus.objects.filter(id__in=campus_ids)).values_list("id", flat=True)
        )
        self.covered_colleges = set(
            units(College, College.objects.filter(campus_id__in=campus_ids)).values_list("id", flat=True)
        )
        self.covered_grades = set(
            units(Grade, Grade.objects.filter(college__campus_id__in=campus_ids)).values_list("id", flat=True)
        )
        self.covered_classes = set(
            units(SchoolClass, SchoolClass.objects.filter(grade__college__campus_id__in=campus_ids)).values_list(
                "id", flat=True
            )
        )
        self.assignable_rooms = set(
            self.scope.assignable_rooms(Room.objects.filter(building__campus_id__in=campus_ids)).values_list(
                "id", flat=True
            )
        )
        # assignable_rooms(): every room of a campus where the importer holds a
        # teaching-tree duty; so on those campuses buildings and rooms may be created.
        self.dorm_campuses = set(self.covered_campuses)
        self.dorm_campuses |= {self.college_campus[c] for c in self.covered_colleges}
        self.dorm_campuses |= {self.college_campus[self.grade_college[g]] for g in self.covered_grades}
        self.dorm_campuses |= {
            self.college_campus[self.grade_college[self.class_grade[k]]] for k in self.covered_classes
        }

    def student_scope_q(self) -> ExpressionWrapper | Value:
        """An expression: is this student inside the importer's scope?"""
        if self.scope.everything:
            return Value(True)
        return ExpressionWrapper(self.scope.student_q(), output_field=BooleanField())

    def resolve(self, row: _Row, units: dict[str, str]) -> None:
        """Find (or plan) the row's class and room, and check the importer may use them."""
        label = units[H_CAMPUS]
        if not label:
            return
        campus_ids = self.campus_by_label.get(label, [])
        if not campus_ids:
            row.error(H_CAMPUS, _("校区“%(campus)s”不存在（校区须先由管理员建立）") % {"campus": label})
            return
        if len(campus_ids) > 1:
            row.error(H_CAMPUS, _("校区“%(campus)s”不唯一，请填写校区代码") % {"campus": label})
            return
        campus_id = row.campus_id = campus_ids[0]
        college_label, year, class_label = units[H_COLLEGE], units.get(H_GRADE), units[H_CLASS]
        allowed = True
        if college_label and year and class_label:
            allowed = self._resolve_class(row, campus_id, college_label, int(year), class_label)
        if units.get(H_ROOM) and units.get(H_BUILDING):
            self._resolve_room(row, campus_id, units[H_BUILDING], units[H_ROOM], check=allowed)

    def _resolve_class(self, row: _Row, campus_id: int, college_label: str, year: int, class_label: str) -> bool:
        college = self.college.get((campus_id, college_label))
        grade = self.grade.get((college, year)) if college else None
        klass = self.school_class.get((grade, class_label)) if grade else None
        row.college = college if college else ("college", campus_id, college_label)
        row.grade = grade if grade else ("grade", row.college, year)
        row.school_class = klass if klass else ("school_class", row.grade, class_label)
        # The importer must hold the deepest existing unit or something above it.
        if klass:
            allowed = klass in self.covered_classes
        elif grade:
            allowed = grade in self.covered_grades
        elif college:
            allowed = college in self.covered_colleges
        else:
            allowed = campus_id in self.covered_campuses
        if allowed:
            return True
        # Name the highest level refused: that is the unit the importer does not hold.
        if not college:
            row.error(H_COLLEGE, _("无权在该校区新建学院“%(college)s”：超出您的管理范围") % {"college": college_label})
        elif college not in self.covered_colleges and (not grade or grade not in self.covered_grades):
            row.error(H_COLLEGE, _("无权导入到学院“%(college)s”：超出您的管理范围") % {"college": college_label})
        elif not grade or grade not in self.covered_grades:
            row.error(
                H_GRADE,
                _("无权导入到%(college)s %(year)s级：超出您的管理范围") % {"college": college_label, "year": year},
            )
        else:
            row.error(H_CLASS, _("无权导入到班级“%(class)s”：超出您的管理范围") % {"class": class_label})
        return False

    def _resolve_room(self, row: _Row, campus_id: int, building_label: str, room_label: str, *, check: bool) -> None:
        building = self.building.get((campus_id, building_label))
        room = self.room.get((building, room_label)) if building else None
        row.building = building if building else ("building", campus_id, building_label)
        row.room = room if room else ("room", row.building, room_label)
        if not check:
            return  # the row is already refused for its class; one message is enough
        if room:
            if room not in self.assignable_rooms:
                row.error(
                    H_ROOM,
                    _("无权把学生安排到 %(building)s %(room)s：超出您的管理范围")
                    % {"building": building_label, "room": room_label},
                )
        elif campus_id not in self.dorm_campuses:
            row.error(
                H_BUILDING,
                _("无权在该校区新建宿舍 %(building)s %(room)s") % {"building": building_label, "room": room_label},
            )


# ---------------------------------------------------------------------------
# The import
# ---------------------------------------------------------------------------
def _load_existing(tree: _Tree, rows: list[_Row]) -> None:
    """Attach the stored student to each row by 学号: one query on PostgreSQL, chunked
    ones elsewhere (:func:`campuses.bulk.one_of`)."""
    by_number = {row.student_number: row for row in rows if row.student_number}
    numbers = sorted(by_number)
    for where in one_of(Student, "student_number", numbers, chunk=_lookup_chunk()):
        for student in Student.objects.filter(where).annotate(roster_in_scope=tree.student_scope_q()):
            row = by_number[student.student_number]
            row.existing = student
            if not student.roster_in_scope:
                row.error(
                    H_NUMBER,
                    _("学号 %(number)s 已属于您管理范围以外的学生，不能修改") % {"number": student.student_number},
                )


def _apply_masked(row: _Row) -> None:
    """A masked value from an export means "keep what is stored" if it masks that."""
    headers = {v: k for k, v in MASKABLE_HEADERS.items()}
    for name, value in row.masked.items():
        stored = getattr(row.existing, name, "") if row.existing else ""
        masker = mask_id_number if name == "id_number" else mask_phone
        if stored and masker(stored) == value:
            row.fields[name] = stored
        else:
            row.error(headers[name], _("“%(value)s”是脱敏后的号码，不能导入；请填写完整号码") % {"value": value})


def _check_beds(tree: _Tree, rows: list[_Row]) -> None:
    """A bed held by a stored student who does not move away in this import is taken.
    The holder's 学号 is named only when the importer's scope reaches them (a dorm room
    is shared by colleges; the scope decides who may be named)."""
    targets = {row.bed_key: row for row in rows if row.clean and row.bed_key and isinstance(row.room, int)}
    if not targets:
        return
    room_ids = sorted({key[0] for key in targets})
    holder: dict[tuple[int, str], str] = {}
    visible: set[str] = set()
    for where in one_of(Student, "room_id", room_ids, chunk=_lookup_chunk()):
        holders = (
            Student.objects.filter(where)
            .exclude(bed="")
            .annotate(roster_in_scope=tree.student_scope_q())
            .values_list("room_id", "bed", "student_number", "roster_in_scope")
        )
        for room_id, bed, number, in_scope in holders:
            holder[(room_id, bed)] = number
            if in_scope:
                visible.add(number)
    by_number = {row.student_number: row for row in rows}
    changed = True
    while changed:  # a refused row keeps its student in his old bed: recheck until stable
        changed = False
        for key, row in targets.items():
            if not row.clean:
                continue
            number = holder.get(key)
            if number is None or number == row.student_number:
                continue
            mover = by_number.get(number)
            if mover is None or not mover.clean:
                if number in visible:
                    row.error(H_BED, _("该床位已有学生入住（学号 %(number)s），请先调整其床位") % {"number": number})
                else:
                    row.error(H_BED, _("该床位已有您管理范围以外的学生入住，请联系宿舍管理人员调整"))
                changed = True


def _auto_codes(used: set[str], prefix: str, count: int, width: int = 3) -> list[str]:
    codes, n = [], 0
    while len(codes) < count:
        n += 1
        code = f"{prefix}{n:0{width}d}"
        if code not in used:
            codes.append(code)
    used.update(codes)
    return codes


_UNIT_KEYS = {College: "college", Grade: "grade", SchoolClass: "school_class", Building: "building", Room: "room"}


class _UnitWriter:
    """Creates the missing units planned by the rows and maps their keys to ids.  In a
    dry run it only counts them, and a planned unit stands for itself (its key)."""

    def __init__(self, tree: _Tree, *, dry_run: bool = False) -> None:
        self.tree = tree
        self.dry_run = dry_run
        self.ids: dict[tuple, int] = {}
        self.created: dict[str, int] = dict.fromkeys(UNIT_LABELS, 0)

    def id(self, ref: UnitRef | None) -> UnitRef | None:
        if ref is None or isinstance(ref, int):
            return ref
        return ref if self.dry_run else self.ids[ref]

    def create(self, rows: list[_Row]) -> None:
        tree = self.tree
        wanted: dict[str, set[tuple]] = defaultdict(set)
        beds: dict[tuple, set[str]] = defaultdict(set)
        for row in rows:
            for name in ("college", "grade", "school_class", "building", "room"):
                ref = getattr(row, name)
                if isinstance(ref, tuple):
                    wanted[name].add(ref)
            if isinstance(row.room, tuple) and row.bed:
                beds[row.room].add(row.bed)
        if self.dry_run:
            self.created = {name: len(wanted[name]) for name in UNIT_LABELS}
            return

        keys = sorted(wanted["college"], key=str)
        by_campus: dict[int, list[tuple]] = defaultdict(list)
        for key in keys:
            by_campus[key[1]].append(key)
        rows, ordered = [], []
        for campus_id, group in by_campus.items():
            for key, code in zip(group, _auto_codes(tree.college_codes[campus_id], "C", len(group)), strict=True):
                rows.append({"campus_id": campus_id, "code": code, "name": key[2]})
                ordered.append(key)
        self._insert(College, rows, ordered)

        keys = sorted(wanted["grade"], key=str)
        rows = [{"college_id": self.id(key[1]), "year": key[2], "name": f"{key[2]}级"} for key in keys]
        self._insert(Grade, rows, keys)

        keys = sorted(wanted["school_class"], key=str)
        by_grade: dict[int, list[tuple]] = defaultdict(list)
        for key in keys:
            by_grade[self.id(key[1])].append(key)
        rows, ordered = [], []
        for grade_id, group in by_grade.items():
            for key, code in zip(group, _auto_codes(tree.class_codes[grade_id], "K", len(group)), strict=True):
                rows.append({"grade_id": grade_id, "code": code, "name": key[2]})
                ordered.append(key)
        self._insert(SchoolClass, rows, ordered)

        keys = sorted(wanted["building"], key=str)
        by_campus = defaultdict(list)
        for key in keys:
            by_campus[key[1]].append(key)
        rows, ordered = [], []
        for campus_id, group in by_campus.items():
            for key, code in zip(group, _auto_codes(tree.building_codes[campus_id], "B", len(group)), strict=True):
                rows.append({"campus_id": campus_id, "code": code, "name": key[2]})
                ordered.append(key)
        self._insert(Building, rows, ordered)

        keys = sorted(wanted["room"], key=str)
        rows = [
            {"building_id": self.id(key[1]), "number": key[2], "beds": min(20, max(4, len(beds.get(key, ()))))}
            for key in keys
        ]
        self._insert(Room, rows, keys)

    def _insert(self, model, rows: list[dict[str, Any]], keys: list[tuple]) -> None:
        """Write ``rows`` (attribute name → value) set-based — rooms can be tens of
        thousands — and map each key to the new row's id, read back by the row's natural
        key (its parent and a field unique within it)."""
        if not rows:
            return
        names = list(rows[0])
        insert_rows(model, [model._meta.get_field(n) for n in names], ([row[n] for n in names] for row in rows))
        parent, natural = _NATURAL_KEYS[model]
        ids: dict[tuple, int] = {}
        for where in one_of(model, parent, sorted({row[parent] for row in rows}), chunk=_lookup_chunk()):
            for pk, under, value in model.objects.filter(where).values_list("id", parent, natural):
                ids[(under, value)] = pk
        for key, row in zip(keys, rows, strict=True):
            self.ids[key] = ids[(row[parent], row[natural])]
        self.created[_UNIT_KEYS[model]] = len(rows)


#: Per unit model: its parent column and the field unique within that parent.
_NATURAL_KEYS = {
    College: ("campus_id", "name"),
    Grade: ("college_id", "year"),
    SchoolClass: ("grade_id", "name"),
    Building: ("campus_id", "name"),
    Room: ("building_id", "number"),
}


#: The columns a new student is written with (all but the primary key).
_NEW_STUDENT_FIELDS = [f for f in Student._meta.concrete_fields if not f.primary_key]


def _student_values(row: _Row, units: _UnitWriter, dorm: bool) -> dict[str, Any]:
    """The model values a row sets, denormalised columns included (bulk writes bypass
    Student.save(), so grade/college/campus come from the class and building from the room)."""
    values = dict(row.fields)
    class_id = units.id(row.school_class)
    grade_id = units.id(row.grade)
    college_id = units.id(row.college)
    values.update(school_class_id=class_id, grade_id=grade_id, college_id=college_id, campus_id=row.campus_id)
    if dorm:
        values["room_id"] = units.id(row.room)
        values["building_id"] = units.id(row.building)
        values["bed"] = row.bed if values["room_id"] else ""
    return values


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while an import holds its rows: 100,000
    rows of cells are millions of live objects that every full collection walks again
    (2.3 s of a 100,000-row xlsx's 17 s read); the import makes no reference cycles, and
    whatever others make meanwhile is collected right after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@_collector_paused()
def roster_import(
    *,
    source: IO[bytes] | str | Path,
    scope: Scope,
    filename: str = "",
    actor=None,
    allow_partial: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> RosterImportResult:
    """Import a roster file into the students of ``scope``'s units.

    Preconditions: ``scope`` may import (:func:`may_import`), else PermissionDenied.
    Every row is checked first; with any error and not ``allow_partial`` nothing is
    written and the result lists every error.  Otherwise, in one transaction, missing
    colleges/grades/classes/buildings/rooms are created, students matched by 学号 are
    updated (only when something changed) and new ones created, with history rows
    attributed to ``actor``.  ``dry_run`` runs every check and counts what would be
    created, updated and left unchanged, writing nothing.  ``progress`` is called as
    ``progress(done, total, stage)`` once per batch."""
    if not may_import(scope):
        raise PermissionDenied(_("导入花名册需要学工部、学院学工或校区专班职务"))
    result = RosterImportResult(dry_run=dry_run)
    parsed = roster_parse(source=source, filename=filename, progress=progress)
    if parsed.fatal:
        result.errors = parsed.errors
        return result
    result.total_rows = len(parsed.rows)
    if not parsed.rows:
        result.errors = [RosterError(0, "", _("文件中没有数据行"))]
        return result

    validator = _Validator(parsed)
    rows: list[_Row] = []
    row_units: list[dict[str, str]] = []
    room_labels: dict[int, str] = {}
    parse_errors: dict[int, list[RosterError]] = defaultdict(list)
    for error in parsed.errors:
        parse_errors[error.row].append(error)
    total = len(parsed.rows)
    step = _batch_size()
    for index, (number, cells) in enumerate(parsed.rows, 1):
        row, units = validator.row(number, cells)
        if number in parse_errors:
            # A cell Excel already spoiled gets one message, not a second one about its digits.
            spoiled = {e.column for e in parse_errors[number]}
            row.errors = parse_errors[number] + [e for e in row.errors if e.column not in spoiled]
        rows.append(row)
        row_units.append(units)
        if row.bed and units.get(H_ROOM):
            room_labels[number] = f"{units[H_BUILDING]} {units[H_ROOM]}"
        if index % step == 0:
            _notify(progress, index, total, STAGE_CHECK)
    _check_duplicate_numbers(rows)

    tree = _Tree(scope, {u[H_CAMPUS] for u in row_units if u[H_CAMPUS]})
    for row, units in zip(rows, row_units, strict=True):
        tree.resolve(row, units)
    _check_duplicate_beds(rows, room_labels)
    _load_existing(tree, rows)
    for row in rows:
        if row.masked:
            _apply_masked(row)
    if H_BUILDING in parsed.columns:
        _check_beds(tree, rows)
    _notify(progress, total, total, STAGE_CHECK)

    for row in rows:
        result.errors.extend(row.errors)
    result.errors.sort(key=lambda e: (e.row, HEADERS.index(e.column) if e.column in HEADERS else 99))
    clean = [row for row in rows if row.clean]
    result.skipped = len(rows) - len(clean)
    if (result.errors and not allow_partial) or not clean:
        return result

    try:
        with transaction.atomic():
            dorm = H_BUILDING in parsed.columns
            _write(result, clean, tree, dorm=dorm, actor=actor, dry_run=dry_run, progress=progress)
    except IntegrityError as exc:
        logger.warning("roster import refused by the database: %s", exc)
        result.created = result.updated = result.unchanged = 0
        result.units_created = {}
        result.errors.append(
            RosterError(0, "", _("数据库拒绝了本次导入（可能有人同时修改了数据），请重试：%(error)s") % {"error": exc})
        )
        return result
    result.imported = not dry_run
    logger.info(
        "roster import by user %s: %d created, %d updated, %d unchanged, %d refused%s",
        scope.user_id,
        result.created,
        result.updated,
        result.unchanged,
        result.skipped,
        " (dry run)" if dry_run else "",
    )
    return result


def _write(
    result: RosterImportResult, rows: list[_Row], tree: _Tree, *, dorm: bool, actor, dry_run: bool, progress
) -> None:
    """Create the planned units, then update and create students set-based with their
    history (:mod:`campuses.bulk`: COPY / executemany, not the ORM's per-batch SQL
    compile).  A dry run counts what would happen and writes nothing."""
    units = _UnitWriter(tree, dry_run=dry_run)
    units.create(rows)
    result.units_created = {k: v for k, v in units.created.items() if v}

    now = timezone.now()
    # New students go in as rows of values (what Student() would hold, with the row's
    # values over it): 100,000 model instances cost more than writing them.
    blank = {f.attname: getattr(Student(), f.attname) for f in _NEW_STUDENT_FIELDS}
    blank.update(created_at=now, updated_at=now)
    new: list[dict[str, Any]] = []
    changed: list[Student] = []
    changed_fields: set[str] = set()
    movers: list[int] = []
    for row in rows:
        values = _student_values(row, units, dorm)
        student = row.existing
        if student is None:
            new.append({**blank, **values, "student_number": row.student_number})
            continue
        diff = [name for name, value in values.items() if getattr(student, name) != value]
        if not diff:
            result.unchanged += 1
            continue
        if dry_run:
            changed.append(student)
            continue
        if dorm and student.bed and (student.room_id, student.bed) != (values["room_id"], values["bed"]):
            movers.append(student.pk)
        for name in diff:
            setattr(student, name, values[name])
        student.updated_at = now
        changed.append(student)
        changed_fields.update(diff)

    result.created = len(new)
    result.updated = len(changed)
    if dry_run:
        return
    size = _batch_size()
    total = len(new) + len(changed)
    done = 0
    _notify(progress, done, total, STAGE_WRITE)
    # Free the beds of students who move first, so swaps within the file do not collide
    # with the (room, bed) constraint; the final values are written with history below.
    for where in one_of(Student, "id", movers, chunk=_lookup_chunk()):
        Student.objects.filter(where).update(bed="")
    fields = sorted(changed_fields | {"updated_at"})
    history = {"user": actor, "reason": REASON, "date": now}
    # Each chunk's history rows are copied from the rows just written, by the server.
    for chunk in _chunks(changed, size):
        update_objects(Student, chunk, fields)
        insert_history_of(Student, column="id", values=[s.pk for s in chunk], history_type="~", **history)
        done += len(chunk)
        _notify(progress, done, total, STAGE_WRITE)
    names = [f.attname for f in _NEW_STUDENT_FIELDS]
    for chunk in _chunks(new, size):
        insert_rows(Student, _NEW_STUDENT_FIELDS, ([values[n] for n in names] for values in chunk))
        numbers = [values["student_number"] for values in chunk]
        insert_history_of(Student, column="student_number", values=numbers, history_type="+", **history)
        done += len(chunk)
        _notify(progress, done, total, STAGE_WRITE)


# ---------------------------------------------------------------------------
# The export
# ---------------------------------------------------------------------------
_EXPORT_FIELDS = (
    "student_number",
    "name",
    "gender",
    "college__name",
    "grade__name",
    "grade__year",
    "school_class__name",
    "campus__name",
    "building__name",
    "room__number",
    "bed",
    "phone",
    "id_number",
    "hometown_province",
    "hometown_city",
    "whereabouts",
    "enrolment_status",
    "guardian_name",
    "guardian_phone",
    "pii_phone",
    "pii_id",
)


def roster_export_rows(*, scope: Scope, queryset: QuerySet | None = None) -> Iterator[list[str]]:
    """The roster of ``scope`` as rows of text (header first), PII masked per student.
    One query however many students: the unit names come joined in (tuples, not model
    instances, so 100,000 students cost no 700,000 objects)."""
    if queryset is not None:
        # Start afresh from the selection's ids: a changelist queryset may carry its own
        # annotations (pii flags) and joins; scope and masking are decided here.
        queryset = Student.objects.filter(pk__in=queryset.values("pk"))
    qs = scope.annotate_pii(scope.students(queryset)).order_by("student_number").values_list(*_EXPORT_FIELDS)
    with translation.override("zh-hans"):
        genders = {value: str(label) for value, label in Gender.choices}
        whereabouts = {value: str(label) for value, label in Whereabouts.choices}
        statuses = {value: str(label) for value, label in EnrolmentStatus.choices}
    yield list(HEADERS)
    for (
        number,
        name,
        gender,
        college,
        grade,
        year,
        klass,
        campus,
        building,
        room,
        bed,
        phone,
        id_number,
        province,
        city,
        where,
        status,
        guardian,
        guardian_phone,
        pii_phone,
        pii_id,
    ) in qs.iterator(chunk_size=_batch_size()):
        yield [
            number,
            name,
            genders.get(gender, gender),
            college,
            grade if _GRADE_RE.match(grade) else str(year),
            klass,
            campus,
            building or "",
            room or "",
            bed,
            phone if pii_phone else mask_phone(phone),
            id_number if pii_id else mask_id_number(id_number),
            hometown_label(province, city),
            whereabouts.get(where, where),
            statuses.get(status, status),
            guardian,
            guardian_phone if pii_phone else mask_phone(guardian_phone),
        ]


_COLUMN_WIDTHS = {
    H_NUMBER: 14,
    H_NAME: 10,
    H_COLLEGE: 22,
    H_CLASS: 18,
    H_CAMPUS: 12,
    H_BUILDING: 16,
    H_PHONE: 14,
    H_ID: 21,
}


def roster_export_xlsx(*, scope: Scope, queryset: QuerySet | None = None) -> bytes:
    """The scoped roster as an ``.xlsx`` file (bytes): see :func:`roster_export_workbook`."""
    return roster_export_workbook(scope=scope, queryset=queryset)[0]


def roster_export_workbook(*, scope: Scope, queryset: QuerySet | None = None) -> tuple[bytes, int]:
    """The scoped roster as an ``.xlsx`` file (bytes) with the import's headers, and the
    number of students in it (for the export audit).

    Only students ``scope`` sees; phone and ID numbers in full only where
    :meth:`Scope.annotate_pii` allows; every cell is a text cell (format ``@``) so
    numbers keep their zeros and digits; values starting with = + - @ are prefixed
    with ``'`` so no spreadsheet runs them.  Written row by row (:class:`XlsxWorkbook`)."""
    workbook = XlsxWorkbook()
    sheet = workbook.sheet("花名册", [_COLUMN_WIDTHS.get(header, 11) for header in HEADERS])
    count = 0
    for index, values in enumerate(roster_export_rows(scope=scope, queryset=queryset)):
        if index == 0:
            sheet.header(values)
            continue
        sheet.row(values)
        count += 1
    data = workbook.save()
    logger.info("roster export by user %s: %d students", scope.user_id, count)
    return data, count
