"""Excel building blocks shared by every export (花名册, 台账).

Rules every exported workbook follows (LIBRARIES.md, "Excel"):

- numbers that are identifiers (学号, phones, ID numbers) are *text* cells (format
  ``@``) so Excel neither drops leading zeros nor rounds 18-digit IDs;
- a text value a spreadsheet would run as a formula (starting with = + - @, a tab or
  a carriage return) is prefixed with ``'`` (CSV / formula injection);
- the download keeps its Chinese file name: ``filename*=UTF-8''…`` (RFC 6266) next to
  an ASCII ``filename`` for old clients.

Used by :mod:`students.roster`, :mod:`students.admin_roster` and
:mod:`reports.ledgers`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from django.http import HttpResponse

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Leading characters that make a spreadsheet treat a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: str) -> str:
    """Neutralise a cell value a spreadsheet would run as a formula (CSV/formula injection)."""
    if value and value.startswith(FORMULA_PREFIXES):
        return f"'{value}"
    return value


def attachment_response(
    data: bytes, *, name: str, ascii_name: str, content_type: str = XLSX_CONTENT_TYPE
) -> HttpResponse:
    """A download keeping a Chinese file name: ``filename`` for old clients, RFC 6266
    ``filename*`` (UTF-8, percent-encoded) for every current browser."""
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    return response


def header_cells(sheet, headers: Iterable[str]) -> list:
    """Bold text cells for a header row of a write-only ``sheet``."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    cells = []
    for value in headers:
        cell = WriteOnlyCell(sheet, value=escape_formula(str(value)))
        cell.font = Font(bold=True)
        cell.number_format = "@"
        cells.append(cell)
    return cells


def row_cells(sheet, values: Iterable[Any]) -> list:
    """Cells for one data row of a write-only ``sheet``: strings become escaped text
    cells (format ``@``), ints and floats stay numbers (counts Excel can sum), None
    stays empty."""
    from openpyxl.cell import WriteOnlyCell

    cells = []
    for value in values:
        if isinstance(value, str):
            cell = WriteOnlyCell(sheet, value=escape_formula(value))
            cell.number_format = "@"
        elif isinstance(value, bool):
            cell = WriteOnlyCell(sheet, value="是" if value else "否")
            cell.number_format = "@"
        else:
            cell = WriteOnlyCell(sheet, value=value)
        cells.append(cell)
    return cells
