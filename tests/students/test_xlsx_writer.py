"""The one writer of every exported workbook (students.xlsx.XlsxWorkbook), read back
with openpyxl as a spreadsheet would see it."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from students.xlsx import XlsxWorkbook


def test_cells_keep_identifiers_as_text_numbers_as_numbers_and_run_no_formula():
    book = XlsxWorkbook(title="留校学生情况统计表")
    listing = book.sheet("名单", (14, 10))
    listing.header(["学号", "=HYPERLINK()"])
    listing.row(["0012024001", "=1+1", True, False, 3, Decimal("37.5"), None, "张三"])
    listing.blank()
    listing.row(["last"])
    summary = book.sheet("统计", freeze_header=False)
    summary.row([1])
    read = load_workbook(io.BytesIO(book.save()))

    assert read.properties.title == "留校学生情况统计表"
    sheet = read["名单"]
    assert sheet.freeze_panes == "A2" and read["统计"].freeze_panes is None
    assert sheet.column_dimensions["A"].width == pytest.approx(14, abs=1)
    header, row, blank, last = sheet.iter_rows()  # as wide as the widest row
    assert [c.value for c in header] == ["学号", "'=HYPERLINK()", *[None] * 6]
    assert all(c.font.b and c.number_format == "@" for c in header[:2])
    assert [c.value for c in row] == ["0012024001", "'=1+1", "是", "否", 3, 37.5, None, "张三"]
    assert [c.data_type for c in row[:4]] == ["s"] * 4 and row[0].number_format == "@"
    assert row[4].data_type == row[5].data_type == "n"
    assert all(c.value is None for c in blank) and last[0].value == "last"
    assert all(c.data_type != "f" for r in sheet.iter_rows() for c in r)
