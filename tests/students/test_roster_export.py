"""Roster export (花名册导出) and the admin import/export pages."""

from __future__ import annotations

import io
from urllib.parse import quote

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from campuses.scoping import scope_for
from students.models import Student
from students.roster import HEADERS, roster_export_xlsx, roster_import
from tests.fixtures.roster import id_number, student_row, write_csv

IMPORT_URL = "admin:students_student_roster_import"
EXPORT_URL = "admin:students_student_roster_export"
CHANGELIST_URL = "admin:students_student_changelist"


def read(data: bytes) -> tuple[list[str], dict[str, dict[str, str]], object]:
    """Headers, rows by 学号, and the sheet of an exported workbook."""
    sheet = load_workbook(io.BytesIO(data)).active
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    headers = rows[0]
    return headers, {r[0]: dict(zip(headers, r, strict=True)) for r in rows[1:]}, sheet


def export_for(user) -> tuple[list[str], dict[str, dict[str, str]], object]:
    return read(roster_export_xlsx(scope=scope_for(user)))


def give_valid_ids(world) -> None:
    for seq, student in enumerate(Student.objects.order_by("pk"), 1):
        Student.objects.filter(pk=student.pk).update(id_number=id_number(seq), hometown_province="370000")


# -- the export ---------------------------------------------------------------
def test_export_headers_are_the_import_headers(world):
    headers, _rows, _sheet = export_for(world.uni_admin)

    assert tuple(headers) == HEADERS


def test_counsellor_export_contains_only_their_own_students(world):
    _headers, rows, _sheet = export_for(world["A"].counsellor)

    assert set(rows) == {s.student_number for s in world["A"].students}
    assert not set(rows) & {s.student_number for s in world["B"].students}


def test_coordinator_export_masks_phone_and_id(world):
    student = world["A"].students[0]

    _headers, rows, _sheet = export_for(world["A"].coordinator)

    row = rows[student.student_number]
    assert row["手机"] == f"{student.phone[:3]}****{student.phone[-4:]}" != student.phone
    assert row["身份证号"] == f"{student.id_number[:4]}{'*' * 10}{student.id_number[-4:]}"


def test_counsellor_export_shows_full_phone_but_masked_id(world):
    student = world["A"].students[0]

    _headers, rows, _sheet = export_for(world["A"].counsellor)

    assert rows[student.student_number]["手机"] == student.phone
    assert "*" in rows[student.student_number]["身份证号"]


def test_college_admin_export_shows_phone_and_id_in_full(world):
    student = world["A"].students[0]

    _headers, rows, _sheet = export_for(world["A"].college_admin)

    assert rows[student.student_number]["身份证号"] == student.id_number
    assert rows[student.student_number]["手机"] == student.phone


def test_numbers_are_written_as_text_cells(world):
    student = world["A"].students[0]  # 学号 starts with 0

    _headers, rows, sheet = export_for(world.uni_admin)

    assert rows[student.student_number]["学号"].startswith("0")
    for cell in next(sheet.iter_rows(min_row=2, max_row=2)):
        if cell.value is not None:
            assert cell.data_type == "s" and cell.number_format == "@", cell.coordinate


def test_formula_values_are_escaped(world):
    student = world["A"].students[0]
    Student.objects.filter(pk=student.pk).update(name='=HYPERLINK("http://evil","x")', guardian_name="+1-2")
    other = world["A"].students[1]
    Student.objects.filter(pk=other.pk).update(name="@SUM(A1)", guardian_name="-3")

    _headers, rows, sheet = export_for(world.uni_admin)

    assert rows[student.student_number]["姓名"] == '\'=HYPERLINK("http://evil","x")'
    assert rows[student.student_number]["监护人"] == "'+1-2"
    assert rows[other.student_number]["姓名"] == "'@SUM(A1)"
    assert rows[other.student_number]["监护人"] == "'-3"
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)


def test_export_takes_one_query_however_many_students(world, django_assert_max_num_queries):
    scope = scope_for(world.uni_admin)
    with django_assert_max_num_queries(1):
        small = roster_export_xlsx(scope=scope)
    klass = world["A"].classes[0]
    Student.objects.bulk_create(
        [
            Student(
                student_number=f"X{n:05d}",
                name=f"学生{n}",
                gender="M",
                school_class=klass,
                grade_id=klass.grade_id,
                college_id=world["A"].college.id,
                campus_id=world["A"].campus.id,
            )
            for n in range(300)
        ]
    )
    with django_assert_max_num_queries(1):
        large = roster_export_xlsx(scope=scope)
    assert len(read(large)[1]) == len(read(small)[1]) + 300


def test_export_of_a_selection_stays_inside_the_scope(world):
    everyone = Student.objects.all()

    _headers, rows, _sheet = read(roster_export_xlsx(scope=scope_for(world["B"].counsellor), queryset=everyone))

    assert set(rows) == {s.student_number for s in world["B"].students}


def test_export_reimports_unchanged_for_an_entitled_user(world, tmp_path):
    give_valid_ids(world)
    path = tmp_path / "roster.xlsx"
    path.write_bytes(roster_export_xlsx(scope=scope_for(world.uni_admin)))

    result = roster_import(source=path, scope=scope_for(world.uni_admin), actor=world.uni_admin)

    assert result.ok, result.errors
    assert (result.created, result.updated, result.unchanged) == (0, 0, Student.objects.count())


def test_masked_export_reimports_keeping_the_stored_numbers(world, tmp_path):
    give_valid_ids(world)
    coordinator = world["A"].coordinator
    path = tmp_path / "roster.xlsx"
    path.write_bytes(roster_export_xlsx(scope=scope_for(coordinator)))
    before = dict(Student.objects.values_list("student_number", "id_number"))

    result = roster_import(source=path, scope=scope_for(coordinator), actor=coordinator)

    assert result.ok, result.errors
    assert result.unchanged == len(world["A"].students) and result.updated == 0
    assert dict(Student.objects.values_list("student_number", "id_number")) == before


# -- the admin pages ----------------------------------------------------------
@pytest.fixture
def as_user(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def _upload(client, path, **data):
    with open(path, "rb") as handle:
        return client.post(reverse(IMPORT_URL), {"file": handle, **data})


def test_college_admin_imports_through_the_upload_page(world, as_user, tmp_path):
    client = as_user(world["A"].college_admin)
    path = write_csv(tmp_path / "名单.csv", [student_row(world, seq=n) for n in range(1, 4)])

    page = client.get(reverse(IMPORT_URL))
    response = _upload(client, path)

    assert page.status_code == 200 and "导入花名册" in page.content.decode()
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="roster-summary"' in body and "导入完成" in body
    assert Student.objects.filter(student_number__startswith="9A").count() == 3
    assert Student.history.filter(student_number="9A000001").get().history_user == world["A"].college_admin


def test_upload_page_lists_every_bad_row_and_imports_nothing(world, as_user, tmp_path):
    client = as_user(world["A"].college_admin)
    rows = [student_row(world, seq=1), student_row(world, seq=2, 性别="?"), student_row(world, "B", seq=3)]
    path = write_csv(tmp_path / "r.csv", rows)

    response = _upload(client, path)

    body = response.content.decode()
    assert 'id="roster-errors"' in body and "未导入任何数据" in body
    assert '<td class="row">3</td>' in body and '<td class="column">性别</td>' in body
    assert '<td class="row">4</td>' in body and '<td class="column">学院</td>' in body
    assert not Student.objects.filter(student_number__in=[r["学号"] for r in rows]).exists()


def test_upload_page_partial_import(world, as_user, tmp_path):
    client = as_user(world["A"].college_admin)
    rows = [student_row(world, seq=1), student_row(world, seq=2, 性别="?")]

    response = _upload(client, write_csv(tmp_path / "r.csv", rows), allow_partial="on")

    assert "导入完成" in response.content.decode()
    assert Student.objects.filter(student_number=rows[0]["学号"]).exists()
    assert not Student.objects.filter(student_number=rows[1]["学号"]).exists()


@pytest.mark.parametrize("persona", ["monitor", "student_user", "counsellor", "logistics"])
def test_upload_page_is_refused_to_roles_without_import_duty(world, as_user, tmp_path, persona):
    client = as_user(getattr(world["A"], persona))
    path = write_csv(tmp_path / "r.csv", [student_row(world, seq=1)])

    assert client.get(reverse(IMPORT_URL)).status_code == 403
    assert _upload(client, path).status_code == 403
    assert not Student.objects.filter(student_number="9A000001").exists()


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get(reverse(IMPORT_URL))

    assert response.status_code == 302 and "login" in response["Location"]


def _content_disposition(day: str) -> str:
    return f"attachment; filename=\"students_{day}.xlsx\"; filename*=UTF-8''{quote(f'学生花名册_{day}.xlsx')}"


def test_export_action_downloads_the_selection_with_a_chinese_filename(world, as_user):
    client = as_user(world["A"].college_admin)
    chosen = world["A"].students[:2]
    outsider = world["B"].students[0]

    response = client.post(
        reverse(CHANGELIST_URL),
        {"action": "export_roster_xlsx", "_selected_action": [s.pk for s in [*chosen, outsider]]},
    )

    assert response.status_code == 200
    day = timezone.localdate().strftime("%Y%m%d")
    assert response["Content-Disposition"] == _content_disposition(day)
    assert "%E5%AD%A6%E7%94%9F%E8%8A%B1%E5%90%8D%E5%86%8C" in response["Content-Disposition"]  # 学生花名册
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    _headers, rows, _sheet = read(response.content)
    assert set(rows) == {s.student_number for s in chosen}


def test_counsellor_exports_everything_in_scope_but_sees_no_import_button(world, as_user):
    client = as_user(world["A"].counsellor)

    changelist = client.get(reverse(CHANGELIST_URL)).content.decode()
    response = client.get(reverse(EXPORT_URL))

    assert reverse(EXPORT_URL) in changelist and reverse(IMPORT_URL) not in changelist
    assert 'value="export_roster_xlsx"' in changelist
    assert response.status_code == 200
    _headers, rows, _sheet = read(response.content)
    assert set(rows) == {s.student_number for s in world["A"].students}


def test_college_admin_sees_both_roster_buttons(world, as_user):
    changelist = as_user(world["A"].college_admin).get(reverse(CHANGELIST_URL)).content.decode()

    assert reverse(IMPORT_URL) in changelist and reverse(EXPORT_URL) in changelist
    assert "导入花名册" in changelist


@pytest.mark.parametrize("persona", ["monitor", "student_user", "logistics", "psych"])
def test_export_is_refused_to_roles_without_export_duty(world, as_user, persona):
    client = as_user(getattr(world["A"], persona))

    assert client.get(reverse(EXPORT_URL)).status_code == 403


def test_blank_template_has_only_the_headers(world, as_user):
    response = as_user(world["A"].college_admin).get(reverse(EXPORT_URL), {"template": "1"})

    headers, rows, _sheet = read(response.content)
    assert tuple(headers) == HEADERS and rows == {}
    assert "roster_template_" in response["Content-Disposition"]


def test_upload_page_and_its_problems_are_in_english_when_asked(world, as_user, tmp_path, settings):
    """Chinese first, English available: only the file's own words stay Chinese (its
    column names, the values it holds and the units they name)."""
    import re

    client = as_user(world["A"].college_admin)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    rows = [
        student_row(world, seq=1),
        student_row(world, seq=2, 性别="?", 身份证号="123"),
        student_row(world, "B", seq=3),
    ]
    path = write_csv(tmp_path / "r.csv", rows)
    file_words = {*HEADERS, "男", "女", "文本", *(v for row in rows for v in row.values() if v)}

    def left_in_chinese(html: str) -> set[str]:
        text = re.sub(r"<code>.*?</code>|<[^>]+>", " ", html)
        for word in sorted(file_words, key=len, reverse=True):
            text = text.replace(word, " ")
        return set(re.findall(r"[\u3400-\u9fff]+", text))

    page = client.get(reverse(IMPORT_URL)).content.decode()
    refused = _upload(client, path).content.decode()
    partial = _upload(client, path, allow_partial="on").content.decode()

    assert "Upload a roster" in page and "nothing was imported" in refused and "Import done" in partial
    assert "Gender should be 男 or 女" in refused and "An ID number has 18 characters" in refused
    assert "outside your scope" in refused
    assert left_in_chinese(page) == left_in_chinese(refused) == left_in_chinese(partial) == set()
    buttons = client.get(reverse(CHANGELIST_URL)).content.decode()
    assert ">Import a roster</a>" in buttons and ">Export the roster of my scope</a>" in buttons
