"""Roster import (花名册导入): parsing, validation, scope, set-based writes, history."""

from __future__ import annotations

import io
import re

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from campuses.models import Building, College, Grade, Room, SchoolClass
from campuses.scoping import Scope, scope_for
from students import roster as roster_module
from students.models import EnrolmentStatus, Gender, Student, Whereabouts
from students.provinces import PROVINCES, resolve_hometown
from students.roster import HEADERS, REASON, RosterError, roster_import
from tests.fixtures.roster import id_number, id_number_ending_in_x, student_row, write_csv, write_xlsx

EVERYTHING = Scope(user_id=None, everything=True)


def run(path, scope=EVERYTHING, **kwargs):
    return roster_import(source=path, scope=scope, **kwargs)


def cells(result) -> set[tuple[int, str]]:
    return {(e.row, e.column) for e in result.errors}


# -- clean files -------------------------------------------------------------
def test_clean_csv_creates_students_with_their_place_in_both_trees(world, tmp_path):
    rows = [student_row(world, "A", seq=n, class_index=n % 2) for n in range(1, 9)]
    rows[0]["当前所在地"] = "实习"
    rows[0]["学籍状态"] = "休学"
    before = Student.objects.count()

    result = run(write_csv(tmp_path / "r.csv", rows), actor=world.uni_admin)

    assert result.ok and result.imported
    assert (result.created, result.updated, result.unchanged) == (8, 0, 0)
    assert Student.objects.count() == before + 8
    first = Student.objects.select_related("room").get(student_number="9A000001")
    ns = world["A"]
    assert first.school_class == ns.classes[1]
    assert (first.grade_id, first.college_id, first.campus_id) == (ns.grade.id, ns.college.id, ns.campus.id)
    assert first.building_id == ns.building.id == first.room.building_id
    assert first.room.number == "N0000" and first.bed == "2"
    assert first.gender == Gender.MALE
    assert (first.hometown_province, first.hometown_city) == ("370000", "370200")
    assert first.whereabouts == Whereabouts.INTERNSHIP
    assert first.enrolment_status == EnrolmentStatus.SUSPENDED
    assert first.guardian_phone == "13700000001"
    record = first.history.get()
    assert record.history_type == "+"
    assert record.history_change_reason == REASON
    assert record.history_user == world.uni_admin


def test_clean_xlsx_creates_students(world, tmp_path):
    rows = [student_row(world, "B", seq=n) for n in range(1, 5)]

    result = run(write_xlsx(tmp_path / "r.xlsx", rows))

    assert result.ok
    assert result.created == 4
    assert set(Student.objects.filter(student_number__startswith="9B").values_list("campus_id", flat=True)) == {
        world["B"].campus.id
    }


def test_headers_with_spaces_and_unknown_columns_are_accepted(world, tmp_path):
    headers = [f"  {h} " for h in HEADERS] + ["备注"]
    path = write_csv(tmp_path / "r.csv", [student_row(world, seq=1)], headers=headers)

    result = run(path)

    assert result.ok and result.created == 1


def test_a_title_row_above_the_headers_is_skipped_and_rows_keep_their_sheet_numbers(world, tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["2024级学生花名册"])
    sheet.append(list(HEADERS))
    good = student_row(world, seq=1)
    bad = student_row(world, seq=2, 性别="?")
    for row in (good, bad):
        sheet.append([row[h] for h in HEADERS])
    workbook.save(tmp_path / "r.xlsx")

    result = run(tmp_path / "r.xlsx")

    assert cells(result) == {(4, "性别")}


def test_full_width_digits_and_spaced_phone_numbers_are_read(world, tmp_path):
    row = student_row(world, seq=1, 学号="９Ａ０００００１", 手机="139 0000-0001")

    result = run(write_csv(tmp_path / "r.csv", [row]))

    assert result.ok, result.errors
    assert Student.objects.get(student_number="9A000001").phone == "13900000001"


@pytest.mark.parametrize("padding", [" ", "\u3000", "\t"])
def test_cells_padded_with_spaces_or_full_width_spaces_are_read_trimmed(world, tmp_path, padding):
    """A CSV cell padded with spaces — a full-width space (U+3000) too, which an
    ideographic input method types — is read as its text; a full-width space inside a
    name stays a space."""
    row = student_row(world, seq=1, 姓名=f"{padding}欧阳\u3000娜娜{padding}")
    row = {header: f"{padding}{value}{padding}" if header != "姓名" else value for header, value in row.items()}

    result = run(write_csv(tmp_path / "r.csv", [row]))

    assert result.ok, result.errors
    student = Student.objects.get(student_number=row["学号"].strip(" \u3000\t"))
    assert student.name == "欧阳 娜娜"
    assert student.phone == row["手机"].strip(" \u3000\t")


def test_missing_required_columns_is_one_clear_error(world, tmp_path):
    headers = [h for h in HEADERS if h not in ("姓名", "班级")]
    path = write_csv(tmp_path / "r.csv", [student_row(world, seq=1)], headers=headers)

    result = run(path)

    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.row == 1 and "姓名" in error.message and "班级" in error.message and "缺少必填列" in error.message
    assert not Student.objects.filter(student_number="9A000001").exists()


# -- bad rows ----------------------------------------------------------------
def test_bad_rows_import_nothing_and_name_each_row(world, tmp_path):
    rows = [student_row(world, seq=n) for n in range(1, 16)]
    rows[1]["性别"] = "未知"  # row 3
    rows[2]["手机"] = "12345678901"  # row 4
    rows[3]["身份证号"] = rows[3]["身份证号"][:-1] + ("0" if rows[3]["身份证号"][-1] != "0" else "1")  # row 5
    rows[4]["年级"] = "二〇二四"  # row 6
    rows[5]["生源地"] = "火星"  # row 7
    rows[7]["学号"] = rows[6]["学号"]  # rows 8 and 9
    rows[9].update(宿舍="N0099", 床位="1")  # rows 11 and 12 share a bed
    rows[10].update(宿舍="N0099", 床位="1")
    rows[11]["当前所在地"] = "月球"  # row 13
    rows[12]["姓名"] = ""  # row 14
    rows[13]["校区"] = "不存在校区"  # row 15
    rows[14]["身份证号"] = "12345"  # row 16
    before = Student.objects.count()

    result = run(write_csv(tmp_path / "r.csv", rows))

    assert not result.imported
    assert Student.objects.count() == before
    assert not Room.objects.filter(number="N0099").exists()
    assert cells(result) == {
        (3, "性别"),
        (4, "手机"),
        (5, "身份证号"),
        (6, "年级"),
        (7, "生源地"),
        (8, "学号"),
        (9, "学号"),
        (11, "床位"),
        (12, "床位"),
        (13, "当前所在地"),
        (14, "姓名"),
        (15, "校区"),
        (16, "身份证号"),
    }
    messages = {(e.row, e.column): e.message for e in result.errors}
    assert "男" in messages[(3, "性别")]
    assert "第 8、9 行" in messages[(8, "学号")]
    assert "18位" in messages[(16, "身份证号")]
    assert messages[(4, "手机")] == "“12345678901”应为11位手机号"
    assert all(isinstance(e, RosterError) and e.message for e in result.errors)


def test_phone_problems_speak_the_imports_language_and_other_scripts_digits_are_refused(world, tmp_path):
    """The phone columns' hints are translated once per import, in its language; a phone
    or ID number in another script's digits (Arabic-Indic here, which NFKC leaves as
    they are) is not a number."""
    arabic_indic = "".join(chr(0x0660 + int(c)) for c in "13900000001")
    rows = [
        student_row(world, seq=1, 手机="12345"),
        student_row(world, seq=2, 监护人电话="999"),
        student_row(world, seq=3, 手机=arabic_indic),
        student_row(world, seq=4, 身份证号="".join(chr(0x0660 + int(c)) for c in "12010220050202001") + "2"),
    ]
    path = write_csv(tmp_path / "r.csv", rows)
    with translation.override("en"):
        result = run(path)
    messages = {(e.row, e.column): e.message for e in result.errors}
    assert set(messages) == {(2, "手机"), (3, "监护人电话"), (4, "手机"), (5, "身份证号")}
    assert messages[(2, "手机")] == "“12345”Should be an 11-digit mobile number"
    assert messages[(3, "监护人电话")] == "“999”Should be an 11-digit mobile number or a landline with its area code"
    assert not result.imported and not Student.objects.filter(student_number__in=[r["学号"] for r in rows]).exists()
    assert run(path).errors[0].message == "“12345”应为11位手机号"  # and in Chinese by default


def test_allow_partial_imports_clean_rows_and_reports_the_rest(world, tmp_path):
    rows = [student_row(world, seq=n) for n in range(1, 5)]
    rows[2]["性别"] = "x"

    result = run(write_csv(tmp_path / "r.csv", rows), allow_partial=True)

    assert result.imported
    assert result.created == 3 and result.skipped == 1
    assert cells(result) == {(4, "性别")}
    assert not Student.objects.filter(student_number=rows[2]["学号"]).exists()
    assert Student.objects.filter(student_number=rows[3]["学号"]).exists()


# -- re-import ---------------------------------------------------------------
def test_reimport_updates_instead_of_duplicating_and_history_records_the_change(world, tmp_path):
    rows = [student_row(world, seq=n) for n in range(1, 6)]
    run(write_csv(tmp_path / "first.csv", rows), actor=world.uni_admin)
    rows[1]["手机"] = "13900009999"
    rows[1]["班级"] = world["A"].classes[1].name
    count = Student.objects.count()

    result = run(
        write_csv(tmp_path / "second.csv", rows),
        actor=world["A"].college_admin,
        scope=scope_for(world["A"].college_admin),
    )

    assert result.ok
    assert (result.created, result.updated, result.unchanged) == (0, 1, 4)
    assert Student.objects.count() == count
    student = Student.objects.get(student_number=rows[1]["学号"])
    assert student.phone == "13900009999"
    assert student.school_class == world["A"].classes[1]
    latest, original = student.history.order_by("-history_id")[:2]
    assert latest.history_type == "~" and original.history_type == "+"
    assert (original.phone, latest.phone) == ("13900000002", "13900009999")
    assert latest.history_user == world["A"].college_admin
    assert latest.history_change_reason == REASON
    assert Student.history.filter(student_number=rows[0]["学号"]).count() == 1  # unchanged: not rewritten


def test_existing_student_keeps_fields_whose_columns_are_absent(world, tmp_path):
    student = world["A"].students[0]
    headers = ["学号", "姓名", "性别", "校区", "学院", "年级", "班级"]
    row = {
        "学号": student.student_number,
        "姓名": "改名",
        "性别": "女",
        "校区": world["A"].campus.code,  # by code as well as by name
        "学院": world["A"].college.code,
        "年级": "2024",
        "班级": student.school_class.code,
    }

    result = run(write_csv(tmp_path / "r.csv", [row], headers=headers))

    assert result.updated == 1
    student.refresh_from_db()
    assert student.name == "改名"
    assert student.phone and student.room_id and student.bed  # untouched


def test_dry_run_checks_everything_and_saves_nothing(world, tmp_path):
    rows = [student_row(world, seq=n, 楼宇="新楼") for n in range(1, 4)]

    result = run(write_csv(tmp_path / "r.csv", rows), dry_run=True)

    assert result.ok and result.dry_run and not result.imported
    assert result.created == 3 and result.units_created["building"] == 1
    assert not Student.objects.filter(student_number__startswith="9A").exists()
    assert not Building.objects.filter(name="新楼").exists()


def test_dry_run_counts_updates_without_writing_them(world, tmp_path):
    rows = [student_row(world, seq=n) for n in range(1, 4)]
    run(write_csv(tmp_path / "first.csv", rows))
    rows[0]["手机"] = "13900009999"
    rows[1]["班级"] = "新班"

    result = run(write_csv(tmp_path / "second.csv", rows), dry_run=True)

    assert (result.created, result.updated, result.unchanged) == (0, 2, 1)
    assert result.units_created == {"school_class": 1}
    assert Student.objects.get(student_number=rows[0]["学号"]).phone == "13900000001"
    assert not SchoolClass.objects.filter(name="新班").exists()
    assert not Student.history.filter(history_type="~", student_number__in=[r["学号"] for r in rows]).exists()


# -- text stays text ---------------------------------------------------------
def test_leading_zeros_and_18_digit_ids_survive_a_csv(world, tmp_path):
    id_x = id_number_ending_in_x()
    rows = [student_row(world, seq=1, 学号="000123", 身份证号=id_x.lower())]
    rows.append(student_row(world, seq=2, 学号="0099", 身份证号=id_number(2)))

    result = run(write_csv(tmp_path / "r.csv", rows))

    assert result.ok
    assert Student.objects.get(student_number="000123").id_number == id_x
    assert Student.objects.get(student_number="0099").id_number == id_number(2)


def test_leading_zeros_and_18_digit_ids_survive_an_xlsx(world, tmp_path):
    id_x = id_number_ending_in_x()
    rows = [
        student_row(world, seq=1, 学号="000123", 身份证号=id_x),
        # Numbers typed into cells: an int 学号 and phone come back without ".0".
        student_row(world, seq=2, 学号=2024002, 手机=13912345678, 身份证号=id_number(2)),
        student_row(world, seq=3, 学号=2024003.0, 手机=13912345679.0, 年级=2024),
    ]

    result = run(write_xlsx(tmp_path / "r.xlsx", rows))

    assert result.ok, result.errors
    assert Student.objects.get(student_number="000123").id_number == id_x
    assert Student.objects.get(student_number="2024002").phone == "13912345678"
    assert Student.objects.get(student_number="2024003").phone == "13912345679"
    assert Student.objects.get(student_number="2024003").id_number == id_number(3)


def test_xlsx_id_stored_as_a_number_is_refused_with_format_as_text_advice(world, tmp_path):
    rows = [student_row(world, seq=1), student_row(world, seq=2)]
    rows[1]["身份证号"] = float(id_number(2))  # what Excel keeps: 15 significant digits

    result = run(write_xlsx(tmp_path / "r.xlsx", rows), allow_partial=True)

    assert [(e.row, e.column) for e in result.errors] == [(3, "身份证号")]
    assert "文本" in result.errors[0].message and "精度" in result.errors[0].message
    assert not Student.objects.filter(student_number=rows[1]["学号"]).exists()
    assert Student.objects.filter(student_number=rows[0]["学号"]).exists()


def test_xlsx_is_read_from_the_sheet_it_opens_on_with_the_sheets_own_row_numbers(world, tmp_path):
    """A workbook saved on its second sheet, whose table starts at B3 below a blank row
    and a title, with an empty row inside it: the active sheet is the roster (the first
    holds notes), its rows keep the numbers Excel shows, the empty row is skipped."""
    from openpyxl import Workbook

    workbook = Workbook()
    notes = workbook.active
    notes.title = "说明"
    notes.append(["学号", "请勿在此页填写"])  # a header that would match, on the wrong sheet
    roster = workbook.create_sheet("花名册")
    roster["B2"] = "2024级学生花名册"
    for column, header in enumerate(HEADERS, start=2):
        roster.cell(row=3, column=column, value=header)
    good, bad = student_row(world, seq=1), student_row(world, seq=2, 性别="?")
    for row_number, row in ((4, good), (6, bad)):  # row 5 left empty
        for column, header in enumerate(HEADERS, start=2):
            roster.cell(row=row_number, column=column, value=row[header])
    workbook.active = 1
    workbook.save(tmp_path / "r.xlsx")

    result = run(tmp_path / "r.xlsx", allow_partial=True)

    assert result.total_rows == 2
    assert cells(result) == {(6, "性别")}
    assert Student.objects.filter(student_number=good["学号"]).exists()


def test_xlsx_cells_of_other_types_are_read_as_the_text_a_person_sees(world, tmp_path):
    """A true/false cell reads 是/否, a date cell its ISO date, a whole number without
    its ".0" — and a phone column holding a date and time is refused, showing it."""
    import datetime as dt

    rows = [
        student_row(world, seq=1, 监护人=True, 床位=2.0),
        student_row(world, seq=2, 监护人=dt.date(1980, 5, 1)),
        student_row(world, seq=3, 手机=dt.datetime(2024, 9, 1, 8, 30)),  # noqa: DTZ001 (Excel keeps no zone)
    ]

    result = run(write_xlsx(tmp_path / "r.xlsx", rows), allow_partial=True)

    assert cells(result) == {(4, "手机")}
    assert result.errors[0].message == "“2024090108:30:00”应为11位手机号"  # the date's text, as phones are read
    first, second = (Student.objects.get(student_number=rows[i]["学号"]) for i in (0, 1))
    assert (first.guardian_name, first.bed, second.guardian_name) == ("是", "2", "1980-05-01")


def _rewrite_sheet(source, path, sheet: str, *substitutions) -> None:
    """Copy the workbook ``source`` to ``path`` with regex ``substitutions`` applied to the
    XML of ``sheet`` (its part in the package), each required to match once."""
    import re
    import zipfile

    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as rewritten:
        for item in original.infolist():
            data = original.read(item.filename)
            if item.filename == sheet:
                for pattern, replacement in substitutions:
                    data, replaced = re.subn(pattern, replacement, data)
                    assert replaced == 1, pattern
            rewritten.writestr(item, data)


def test_xlsx_formula_errors_are_refused_not_read_as_blanks(world, tmp_path):
    """A formula's #N/A or #REF! (a VLOOKUP that found nothing) is an error cell, which
    python-calamine reads as empty: on the sheet the workbook opens on — the second
    here, its table from column B — the import finds them and refuses those cells, so a re-import never blanks a
    stored phone, and a name is never imported as blank."""
    from openpyxl import Workbook

    existing = student_row(world, seq=1)
    assert run(write_csv(tmp_path / "first.csv", [existing])).ok
    workbook = Workbook()
    workbook.active.append(["说明"])
    sheet = workbook.create_sheet("花名册")
    sheet.append([None, *HEADERS])  # the table from column B
    again = {**existing, "手机": "PHONE"}
    fresh = student_row(world, seq=2, 姓名="NAME")
    for row in (again, fresh):
        sheet.append([None, *(row[h] for h in HEADERS)])
    workbook.active = 1
    workbook.save(tmp_path / "source.xlsx")
    phone = HEADERS.index("手机")
    name = HEADERS.index("姓名")
    column = lambda i: chr(ord("B") + i)  # noqa: E731
    _rewrite_sheet(
        tmp_path / "source.xlsx",
        tmp_path / "r.xlsx",
        "xl/worksheets/sheet2.xml",
        (rf'<c r="{column(phone)}2" t="inlineStr"><is><t>PHONE</t></is></c>'.encode(),
         f'<c r="{column(phone)}2" t="e"><f>VLOOKUP(A2,Sheet1!A:B,2,0)</f><v>#N/A</v></c>'.encode()),
        (rf'<c r="{column(name)}3" t="inlineStr"><is><t>NAME</t></is></c>'.encode(),
         f'<c r="{column(name)}3" t="e"><v>#REF!</v></c>'.encode()),
    )  # fmt: skip

    result = run(tmp_path / "r.xlsx", allow_partial=True)

    messages = {(e.row, e.column): e.message for e in result.errors}
    assert messages == {
        (2, "手机"): "单元格是公式错误 #N/A，请改为实际的值",
        (3, "姓名"): "单元格是公式错误 #REF!，请改为实际的值",
    }
    assert Student.objects.get(student_number=existing["学号"]).phone == existing["手机"]
    assert not Student.objects.filter(student_number=fresh["学号"]).exists()
    with translation.override("en"):
        english = run(tmp_path / "r.xlsx", allow_partial=True).errors[0].message
    assert english == "The cell is a formula error #N/A: type in the actual value"


def test_xlsx_with_a_wrong_dimension_is_read_whole(world, tmp_path):
    """Some generators write a <dimension> smaller than the sheet (A1:B2 here): every row
    and column there is read all the same."""
    rows = [student_row(world, seq=n) for n in range(1, 6)]
    source = write_xlsx(tmp_path / "source.xlsx", rows)
    path = tmp_path / "r.xlsx"
    wrong = (rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1:B2"/>')
    _rewrite_sheet(source, path, "xl/worksheets/sheet1.xml", wrong)

    result = run(path)

    assert result.ok, result.errors
    assert result.created == 5
    assert Student.objects.get(student_number=rows[4]["学号"]).guardian_phone == rows[4]["监护人电话"]


@pytest.mark.parametrize(
    "content",
    [b"PK\x03\x04 not really a zip", b"", b"\x89PNG\r\n\x1a\n an image renamed"],
    ids=["broken-zip", "empty", "png"],
)
def test_a_file_that_is_not_a_workbook_is_one_clear_error(world, tmp_path, content):
    path = tmp_path / "r.xlsx"
    path.write_bytes(content)

    result = run(path)

    assert not result.imported and result.total_rows == 0
    assert len(result.errors) == 1 and result.errors[0].row == 0
    assert "无法读取 Excel 文件" in result.errors[0].message


def test_a_zip_that_is_not_a_workbook_is_one_clear_error(world, tmp_path):
    import zipfile

    path = tmp_path / "r.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "不是工作簿")

    result = run(path)

    assert [(e.row, e.column) for e in result.errors] == [(0, "")]
    assert "无法读取 Excel 文件" in result.errors[0].message


def test_csv_id_saved_in_scientific_notation_is_refused(world, tmp_path):
    rows = [student_row(world, seq=1, 身份证号="3.70202E+17")]

    result = run(write_csv(tmp_path / "r.csv", rows))

    assert [(e.row, e.column) for e in result.errors] == [(2, "身份证号")]
    assert "科学计数法" in result.errors[0].message


def test_gbk_csv_from_excel_is_read(world, tmp_path):
    rows = [student_row(world, seq=1, 姓名="张三丰", 生源地="黑龙江省哈尔滨市")]
    path = write_csv(tmp_path / "r.csv", rows, encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")

    result = run(path)

    assert result.ok, result.errors
    student = Student.objects.get(student_number=rows[0]["学号"])
    assert student.name == "张三丰"
    assert student.college_id == world["A"].college.id
    assert student.hometown_province == "230000"


def test_import_accepts_a_file_object(world):
    buffer = io.BytesIO()
    path_rows = [student_row(world, seq=1)]
    text = ",".join(HEADERS) + "\r\n" + ",".join(path_rows[0][h] for h in HEADERS) + "\r\n"
    buffer.write(text.encode("utf-8"))
    buffer.seek(0)

    result = roster_import(source=buffer, filename="upload.csv", scope=EVERYTHING)

    assert result.created == 1


# -- the tree ----------------------------------------------------------------
def test_missing_units_are_created_once_under_the_right_parents(world, tmp_path):
    ns = world["A"]
    rows = [
        student_row(world, seq=n, 学院="新闻学院", 年级="2025", 班级="新闻2025-1班", 楼宇="新楼", 宿舍="101")
        for n in range(1, 4)
    ]
    rows.append(student_row(world, seq=4, 年级="2023级", 班级="法学2023-1班", 楼宇=ns.building.name, 宿舍="999"))

    result = run(write_csv(tmp_path / "r.csv", rows))

    assert result.ok, result.errors
    assert result.units_created == {"college": 1, "grade": 2, "school_class": 2, "building": 1, "room": 2}
    college = College.objects.get(campus=ns.campus, name="新闻学院")
    assert college.code and college.code != ns.college.code
    grade = Grade.objects.get(college=college)
    assert (grade.year, grade.name) == (2025, "2025级")
    klass = SchoolClass.objects.get(grade=grade)
    assert klass.name == "新闻2025-1班"
    assert Grade.objects.get(college=ns.college, year=2023).classes.get().name == "法学2023-1班"
    room = Room.objects.get(building__name="新楼", number="101")
    assert room.building.campus == ns.campus
    assert set(Student.objects.filter(school_class=klass).values_list("room_id", "building_id", "college_id")) == {
        (room.id, room.building_id, college.id)
    }
    assert Room.objects.get(building=ns.building, number="999").students.get().student_number == rows[3]["学号"]


def test_unknown_campus_is_an_error_not_created(world, tmp_path):
    result = run(write_csv(tmp_path / "r.csv", [student_row(world, seq=1, 校区="青岛校区")]))

    assert cells(result) == {(2, "校区")}
    assert "不存在" in result.errors[0].message


# -- scope ------------------------------------------------------------------
def test_college_admin_importing_into_another_college_is_refused(world, tmp_path):
    actor = world["A"].college_admin
    rows = [student_row(world, "A", seq=1), student_row(world, "B", seq=2)]

    result = run(write_csv(tmp_path / "r.csv", rows), scope=scope_for(actor), actor=actor)

    assert cells(result) == {(3, "学院")}
    assert "管理范围" in result.errors[0].message
    assert not Student.objects.filter(student_number__in=[r["学号"] for r in rows]).exists()


def test_college_admin_cannot_overwrite_a_student_of_another_college(world, tmp_path):
    actor = world["A"].college_admin
    outsider = world["B"].students[0]
    row = student_row(world, "A", seq=1, 学号=outsider.student_number, 姓名="冒名")

    result = run(write_csv(tmp_path / "r.csv", [row]), scope=scope_for(actor), allow_partial=True)

    assert cells(result) == {(2, "学号")}
    outsider.refresh_from_db()
    assert outsider.name != "冒名" and outsider.campus == world["B"].campus


def test_college_admin_cannot_create_a_college_but_a_coordinator_can(world, tmp_path):
    path = write_csv(tmp_path / "r.csv", [student_row(world, "A", seq=1, 学院="新学院")])

    refused = run(path, scope=scope_for(world["A"].college_admin))
    accepted = run(path, scope=scope_for(world["A"].coordinator))

    assert cells(refused) == {(2, "学院")}
    assert accepted.ok and accepted.units_created["college"] == 1


def test_coordinator_cannot_import_into_the_other_campus(world, tmp_path):
    path = write_csv(tmp_path / "r.csv", [student_row(world, "B", seq=1)])

    result = run(path, scope=scope_for(world["A"].coordinator))

    assert cells(result) == {(2, "学院")}


@pytest.mark.parametrize("persona", ["counsellor", "monitor", "logistics"])
def test_roles_without_import_duty_may_not_import(world, tmp_path, persona):
    path = write_csv(tmp_path / "r.csv", [student_row(world, seq=1)])

    with pytest.raises(PermissionDenied):
        run(path, scope=scope_for(getattr(world["A"], persona)))


# -- beds -------------------------------------------------------------------
def test_a_bed_held_by_a_student_not_in_the_file_is_an_error(world, tmp_path):
    ns = world["A"]
    holder = ns.students[0]
    row = student_row(world, seq=1, 楼宇=ns.building.name, 宿舍=holder.room.number, 床位=holder.bed)

    result = run(write_csv(tmp_path / "r.csv", [row]))

    assert cells(result) == {(2, "床位")}
    assert holder.student_number in result.errors[0].message


def test_a_bed_held_by_a_student_outside_the_importers_scope_is_refused_without_naming_them(world, tmp_path):
    ns = world["A"]
    other_college = College.objects.create(campus=ns.campus, code="A02", name="理学院(中心校区)")
    grade = Grade.objects.create(college=other_college, year=ns.grade.year, name=ns.grade.name)
    klass = SchoolClass.objects.create(grade=grade, code="A02K1", name="理学1班")
    outsider = Student.objects.create(
        student_number="OUT0001",
        name="外院学生",
        gender=ns.students[0].gender,
        school_class=klass,
        grade=grade,
        college=other_college,
        campus=ns.campus,
        building=ns.building,
        room=ns.rooms[1],
        bed="4",
    )
    row = student_row(world, seq=1, 楼宇=ns.building.name, 宿舍=outsider.room.number, 床位="4")

    result = run(write_csv(tmp_path / "r.csv", [row]), scope=scope_for(ns.college_admin))

    assert cells(result) == {(2, "床位")}
    assert outsider.student_number not in result.errors[0].message
    assert "管理范围以外" in result.errors[0].message
    assert not result.imported


def test_students_swapping_beds_in_one_file_is_fine(world, tmp_path):
    first, second = world["A"].students[0], world["A"].students[1]
    rows = []
    for student, other in ((first, second), (second, first)):
        rows.append(
            {
                "学号": student.student_number,
                "姓名": student.name,
                "性别": student.get_gender_display(),
                "学院": student.college.name,
                "年级": "2024级",
                "班级": student.school_class.name,
                "校区": student.campus.name,
                "楼宇": other.building.name,
                "宿舍": other.room.number,
                "床位": other.bed,
            }
        )
    headers = list(rows[0])

    result = run(write_csv(tmp_path / "r.csv", rows, headers=headers))

    assert result.ok, result.errors
    assert result.updated == 2
    old = (first.bed, second.bed)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.bed, second.bed) == (old[1], old[0])


# -- scale ------------------------------------------------------------------
def _count_queries(world, tmp_path, n: int, name: str) -> int:
    rows = [
        student_row(world, seq=i, class_index=i % 2, 学号=f"{name}{i:06d}", 宿舍=f"{name}{i // 4:04d}")
        for i in range(1, n + 1)
    ]
    path = write_csv(tmp_path / f"{name}.csv", rows)
    with CaptureQueriesContext(connection) as ctx:
        result = run(path)
    assert result.created == n
    return len(ctx.captured_queries)


def test_query_count_does_not_grow_per_row(world, tmp_path, django_assert_max_num_queries, settings):
    settings.TONGXIN = {**settings.TONGXIN, "BULK_BATCH_SIZE": 1000}
    small = _count_queries(world, tmp_path, 500, "S")
    large = _count_queries(world, tmp_path, 2000, "L")

    # Extra rows cost batched statements (SQLite caps a statement at 999 parameters),
    # never a query each: 1,500 more rows may add far fewer than 1,500 / 10 queries.
    print(f"queries: 500 rows → {small}, 2000 rows → {large}")
    assert large - small < 150
    rows = [student_row(world, seq=i, 学号=f"M{i:06d}", 宿舍=f"M{i // 4:04d}") for i in range(1, 2001)]
    path = write_csv(tmp_path / "m.csv", rows)
    with django_assert_max_num_queries(small + 150):
        run(path)


def test_progress_is_reported_per_batch(world, tmp_path, settings):
    settings.TONGXIN = {**settings.TONGXIN, "BULK_BATCH_SIZE": 10}
    rows = [student_row(world, seq=i) for i in range(1, 36)]
    calls = []

    run(write_csv(tmp_path / "r.csv", rows), progress=lambda done, total, stage: calls.append((stage, done, total)))

    writes = [(done, total) for stage, done, total in calls if stage == "写入"]
    assert writes[0] == (0, 35) and writes[-1] == (35, 35)
    assert len(writes) == 5  # start + four batches of at most 10
    assert {stage for stage, _, _ in calls} == {"读取", "校验", "写入"}


# -- hometown ---------------------------------------------------------------
def test_hometown_codes_derive_province_and_city():
    assert len(PROVINCES) == 34
    assert resolve_hometown("370202") == ("370000", "370200")
    assert resolve_hometown("110000") == ("110000", "")
    assert resolve_hometown("北京") == ("110000", "")
    assert resolve_hometown("广西壮族自治区") == ("450000", "")
    with pytest.raises(ValueError):
        resolve_hometown("990101")


# -- the command ------------------------------------------------------------
def test_command_prints_the_error_table_and_fails_when_nothing_was_imported(world, tmp_path, capsys):
    rows = [student_row(world, seq=1), student_row(world, seq=2, 性别="?")]
    path = write_csv(tmp_path / "r.csv", rows)

    with pytest.raises(CommandError):
        call_command("import_roster", str(path))

    out = capsys.readouterr().out
    assert "行" in out and "列" in out and "问题" in out
    assert any(line.split()[:2] == ["3", "性别"] for line in out.splitlines())
    assert not Student.objects.filter(student_number=rows[0]["学号"]).exists()


def test_command_imports_as_a_user_and_prints_a_summary(world, tmp_path, capsys):
    rows = [student_row(world, seq=n) for n in range(1, 4)]
    path = write_csv(tmp_path / "r.csv", rows)

    call_command("import_roster", str(path), "--as-user", world["A"].college_admin.username)
    call_command("import_roster", str(path), "--as-user", world["A"].college_admin.username)

    captured = capsys.readouterr()
    assert "新增 3" in captured.out and "未变 3" in captured.out
    assert "写入" in captured.err and "100%" in captured.err
    assert Student.objects.get(student_number=rows[0]["学号"]).history.get().history_user == world["A"].college_admin


def test_command_as_user_outside_scope_fails(world, tmp_path):
    path = write_csv(tmp_path / "r.csv", [student_row(world, "B", seq=1)])

    with pytest.raises(CommandError):
        call_command("import_roster", str(path), "--as-user", world["A"].college_admin.username)

    assert not Student.objects.filter(student_number__startswith="9B").exists()


@pytest.mark.parametrize("enabled", [True, False])
def test_the_import_pauses_the_garbage_collector_and_restores_it(world, tmp_path, enabled, monkeypatch):
    """The collector is off while the import holds its rows (a 100,000-row file is
    millions of objects), and back as it was afterwards — also when the import fails."""
    import gc

    seen = []
    real = roster_module.roster_parse

    def spy(**kwargs):
        seen.append(gc.isenabled())
        return real(**kwargs)

    monkeypatch.setattr(roster_module, "roster_parse", spy)
    (gc.enable if enabled else gc.disable)()
    try:
        assert run(write_csv(tmp_path / "r.csv", [student_row(world, "A", seq=1)])).imported
        assert seen and not any(seen)  # off while reading (roster_parse opens a path, then reads it)
        assert gc.isenabled() is enabled
        monkeypatch.setattr(roster_module, "roster_parse", lambda **kwargs: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            run(write_csv(tmp_path / "r.csv", [student_row(world, "A", seq=2)]))
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


def test_command_speaks_english_when_asked(world, tmp_path, capsys):
    """``--language en``: the command's own words, the problems and the progress in
    English — only the file's words (its column 性别 and the values it allows) stay."""
    bad = write_csv(tmp_path / "bad.csv", [student_row(world, seq=1), student_row(world, seq=2, 性别="?")])
    with pytest.raises(CommandError) as refused:
        call_command("import_roster", str(bad), "--language", "en")
    good = write_csv(tmp_path / "good.csv", [student_row(world, seq=n) for n in range(3, 6)])
    call_command("import_roster", str(good), "--language", "en")

    captured = capsys.readouterr()
    assert "1 problem(s) found in 1 row(s):" in captured.out
    assert captured.out.splitlines()[1].split() == ["Row", "Column", "Problem"]
    assert "Not imported: 2 row(s); 0 new" in captured.out
    assert "Import done: 3 row(s); 3 new, 0 updated, 0 unchanged" in captured.out
    assert "Reading 100%" in captured.err and "Writing 100%" in captured.err
    assert "nothing was imported" in str(refused.value)
    words = captured.out + captured.err + str(refused.value)
    for own in ("性别", "男", "女"):
        words = words.replace(own, "")
    assert not re.search(r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]", words)
    assert translation.get_language() == "zh-hans"  # the command's language does not outlive it


def test_the_commands_error_table_counts_the_problems_it_does_not_print():
    from students.management.commands.import_roster import error_table

    errors = [RosterError(row=n, column="性别", message="x") for n in (2, 3, 4)]
    assert error_table(errors, limit=2).splitlines()[-1] == "…… 另有 1 个问题未列出。"
    with translation.override("en"):
        assert error_table(errors, limit=2).splitlines()[-1] == "… and 1 more problems not listed."
    assert len(error_table(errors, limit=3).splitlines()) == 2 + 3  # headers, rule, every row


@pytest.mark.parametrize("offset", [0, 2, 5])
def test_an_error_cell_across_the_streams_chunks_is_found(tmp_path, offset):
    """The sheet's XML is streamed a mebibyte at a time to look for an error cell: one
    whose ``t="e"`` straddles two chunks is found too."""
    import zipfile

    cell = b'<c r="AB7" t="e"><v>#N/A</v></c>'
    start = (1 << 20) - len(b'<c r="AB7" ') - offset  # t="e" begins `offset` bytes before the boundary
    xml = b" " * start + cell + b" " * 100
    assert xml.index(b't="e"') == (1 << 20) - offset
    path = tmp_path / "sheet.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("xl/worksheets/sheet1.xml", xml)
    with zipfile.ZipFile(path) as archive:
        assert roster_module._error_cells(archive, "xl/worksheets/sheet1.xml") == {7: {27: "#N/A"}}
