"""The Excel ledgers (台账): 《留校学生情况统计表》, the roll-up workbook, the missing
and abnormal lists — scope, masking per role, formula escaping, identifiers as
text, the Chinese file name, refusals, the export audit, and a fixed number of
queries whatever the size.  Every workbook is opened with openpyxl."""

from __future__ import annotations

import datetime as dt
import io
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from campuses.models import SchoolClass
from reports.export_models import ExportKind, ExportRecord
from reports.rollup import rollup_compile
from reports.rollup_models import RollupSnapshot
from students.models import AttentionTag, Gender, KeyAttentionTag, Student, Whereabouts
from tests.reports.checkin import counsellors_and_contacts, local, make_slots, submit, today

pytestmark = pytest.mark.django_db

LIST_SHEET = "留校学生名单"


@pytest.fixture
def slots(world):
    return make_slots(world)


def get(client, user, name: str, **params):
    client.force_login(user)
    return client.get(reverse(f"ledgers:{name}"), params)


def workbook(response):
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    return load_workbook(io.BytesIO(response.content))


def values(sheet) -> list[list]:
    return [[c.value for c in row] for row in sheet.iter_rows()]


def table(sheet) -> tuple[list[str], dict[str, dict]]:
    """A list sheet (header in row 1) as its headers and rows keyed by the first column."""
    rows = values(sheet)
    headers = rows[0]
    return headers, {r[0]: dict(zip(headers, r, strict=True)) for r in rows[1:]}


def every_text(book) -> str:
    return "\n".join(str(v) for sheet in book.worksheets for row in values(sheet) for v in row if v is not None)


def numbers(students) -> set[str]:
    return {s.student_number for s in students}


def fever(student, **kwargs):
    return submit(student, when=local(8, 0), temperature="38.4", symptoms=["cough"], **kwargs)


# -- 《留校学生情况统计表》 ---------------------------------------------------------
def test_stay_ledger_of_a_campus_a_counsellor_has_no_campus_b_student_or_unit(world, client, slots):
    a, b = world["A"], world["B"]

    book = workbook(get(client, a.counsellor, "stay"))

    assert book.sheetnames == ["统计表", LIST_SHEET]
    _headers, rows = table(book[LIST_SHEET])
    assert set(rows) == numbers(a.students)
    text = every_text(book)
    for name in (b.campus.name, b.college.name, b.building.name, *(s.name for s in b.students)):
        assert name not in text


def test_stay_ledger_counts_by_college_and_building(world, client, slots):
    a = world["A"]
    Student.objects.filter(pk=a.students[5].pk).update(whereabouts=Whereabouts.HOME)
    KeyAttentionTag.objects.create(student=a.students[0], tag=AttentionTag.QUARANTINE, reason="密接", since=today())
    KeyAttentionTag.objects.create(student=a.students[0], tag=AttentionTag.HARDSHIP, reason="困难", since=today())
    KeyAttentionTag.objects.create(
        student=a.students[1],
        tag=AttentionTag.FEVER,
        reason="旧",
        since=today() - dt.timedelta(days=9),
        until=today() - dt.timedelta(days=1),
    )  # ended yesterday: not counted
    fever(a.students[2])

    rows = values(workbook(get(client, a.coordinator, "stay"))["统计表"])

    assert rows[0][0] == "留校学生情况统计表"
    assert today().isoformat() in rows[1][0]
    start = next(i for i, r in enumerate(rows) if r[0] == "一、按学院统计") + 1
    header = rows[start]
    college = dict(zip(header, rows[start + 1], strict=True))
    assert (college["学院"], college["留校人数"], college["男"], college["女"]) == (a.college.name, 5, 2, 3)
    assert (college["隔离观察"], college["家庭困难"], college["发热"], college["重点人员合计"]) == (1, 1, 0, 1)
    assert college["当日异常"] == 1
    assert rows[start + 2][0] == "合计" and rows[start + 2][2] == 5
    start = next(i for i, r in enumerate(rows) if r[0] == "二、按楼宇统计") + 1
    building = dict(zip(rows[start], rows[start + 1], strict=True))
    assert (building["楼宇"], building["留校人数"], building["入住宿舍数"]) == (a.building.name, 5, 2)


def test_stay_ledger_lists_only_enrolled_students_on_campus(world, client, slots):
    a = world["A"]
    Student.objects.filter(pk=a.students[0].pk).update(whereabouts=Whereabouts.HOME)
    Student.objects.filter(pk=a.students[1].pk).update(enrolment_status="suspended")

    _headers, rows = table(workbook(get(client, a.college_admin, "stay"))[LIST_SHEET])

    assert set(rows) == numbers(a.students[2:])


def test_logistics_gets_the_stay_ledger_without_health_columns(world, client, slots):
    a = world["A"]
    fever(a.students[0])

    book = workbook(get(client, a.logistics, "stay"))

    headers, rows = table(book[LIST_SHEET])
    assert set(rows) == numbers(a.students)
    assert "当日异常" not in headers and "重点人员" not in headers
    assert "当日异常" not in every_text(book)


@pytest.mark.parametrize(
    ("persona", "full_phone", "full_id"),
    [("coordinator", False, False), ("counsellor", True, False), ("college_admin", True, True)],
)
def test_stay_ledger_masks_phone_and_id_per_role(world, client, slots, persona, full_phone, full_id):
    a = world["A"]
    student = a.students[0]

    _headers, rows = table(workbook(get(client, getattr(a, persona), "stay"))[LIST_SHEET])

    row = rows[student.student_number]
    assert (row["手机"] == student.phone) is full_phone
    assert (row["身份证号"] == student.id_number) is full_id
    if not full_phone:
        assert row["手机"] == f"{student.phone[:3]}****{student.phone[-4:]}"
    if not full_id:
        assert row["身份证号"] == f"{student.id_number[:4]}{'*' * 10}{student.id_number[-4:]}"


def test_formulas_are_escaped_and_numbers_are_text(world, client, slots):
    a = world["A"]
    Student.objects.filter(pk=a.students[0].pk).update(name="=cmd|' /C calc'!A0", student_number="00012")
    Student.objects.filter(pk=a.students[1].pk).update(name="+1", bed="-2")
    Student.objects.filter(pk=a.students[2].pk).update(name="@SUM(A1)")
    Student.objects.filter(pk=a.students[3].pk).update(name="\t=1+1")

    sheet = workbook(get(client, a.college_admin, "stay"))[LIST_SHEET]

    cells = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    names = {row[1].value for row in cells.values()}
    assert {"'=cmd|' /C calc'!A0", "'+1", "'@SUM(A1)", "'\t=1+1"} <= names
    for row in cells.values():
        assert all(c.data_type != "f" for c in row)
    first = cells["00012"]
    assert first[0].data_type == "s" and first[0].number_format == "@"
    phone = first[10]
    assert phone.value == a.students[0].phone and phone.data_type == "s" and phone.number_format == "@"
    assert first[11].value == a.students[0].id_number and first[11].data_type == "s"


def test_stay_ledger_narrowed_to_a_building_in_scope(world, client, slots):
    a = world["A"]

    response = get(client, world.uni_admin, "stay", unit=f"building:{a.building.pk}")

    _headers, rows = table(workbook(response)[LIST_SHEET])
    assert set(rows) == numbers(a.students)
    assert ExportRecord.objects.get().parameters["unit"] == f"building:{a.building.pk}"


def test_class_monitor_is_refused_the_stay_ledger(world, client, slots):
    assert get(client, world["A"].monitor, "stay").status_code == 403


# -- the roll-up workbook ---------------------------------------------------------
def test_rollup_workbook_has_one_sheet_per_level_with_only_units_in_scope(world, client, slots):
    a, b = world["A"], world["B"]
    submit(a.students[0])
    submit(b.students[0])

    book = workbook(get(client, a.counsellor, "rollup"))

    assert book.sheetnames == ["学校", "校区", "学院", "年级", "班级"]
    _h, grades = table(book["年级"])
    assert list(grades) == [a.campus.name]
    headers, *classes = values(book["班级"])
    assert headers[:4] == ["校区", "学院", "年级", "班级"]
    assert "完成率(%)" in headers and "应报" in headers
    assert sorted(row[:4] for row in classes) == [
        [a.campus.name, a.college.name, a.grade.name, c.name] for c in a.classes
    ]
    assert values(book["学校"])[1:] == [] and values(book["校区"])[1:] == []
    text = every_text(book)
    assert b.campus.name not in text and b.college.name not in text


def test_rollup_workbook_of_today_is_live_with_completion(world, client, slots):
    a = world["A"]
    submit(a.students[0])
    submit(a.students[1])

    book = workbook(get(client, world.uni_admin, "rollup"))

    campus = {row[0]: dict(zip(values(book["校区"])[0], row, strict=True)) for row in values(book["校区"])[1:]}
    assert (campus[a.campus.name]["应报"], campus[a.campus.name]["已报"]) == (6, 2)
    assert campus[a.campus.name]["完成率(%)"] == pytest.approx(33.3)
    assert ExportRecord.objects.get().parameters["source"] == "live"


def test_rollup_workbook_of_a_past_day_reads_the_snapshots(world, client, slots):
    a = world["A"]
    yesterday = today() - dt.timedelta(days=1)
    submit(a.students[0], when=local(8, 0, day=yesterday))
    rollup_compile(on=yesterday, slot_code="morning")
    # The snapshot, not the raw reports, is what a past day's workbook shows.
    RollupSnapshot.objects.filter(date=yesterday, level="campus", unit_id=a.campus.pk).update(reported=5)

    book = workbook(get(client, a.coordinator, "rollup", date=yesterday.isoformat()))

    _headers, campus = table(book["校区"])
    assert campus[a.campus.name]["已报"] == 5
    assert ExportRecord.objects.get().parameters["source"] == "snapshot"


def test_rollup_workbook_narrowed_to_a_college(world, client, slots):
    a = world["A"]

    book = workbook(get(client, world.uni_admin, "rollup", unit=f"college:{a.college.pk}"))

    assert values(book["学校"])[1:] == [] and values(book["校区"])[1:] == []
    _h, colleges = table(book["学院"])
    assert list(colleges) == [a.campus.name]


@pytest.mark.parametrize("persona", ["monitor", "logistics"])
def test_roles_without_health_data_are_refused_the_rollup_workbook(world, client, slots, persona):
    assert get(client, getattr(world["A"], persona), "rollup").status_code == 403


# -- the missing list --------------------------------------------------------------
def test_missing_list_of_a_counsellor_has_contact_details(world, client, slots):
    a = world["A"]
    submit(a.students[0])

    headers, rows = table(workbook(get(client, a.counsellor, "missing"))["未报名单"])

    assert headers == [
        "学号",
        "姓名",
        "学院",
        "班级",
        "手机",
        "负责辅导员",
        "最近联系时间",
        "联系方式",
        "联系结果",
        "联系人",
    ]
    assert set(rows) == numbers(a.students[1:])
    assert rows[a.students[1].student_number]["手机"] == a.students[1].phone


def test_missing_list_names_each_rows_counsellor_and_last_contact_chunk_by_chunk(world, client, slots, settings):
    """The details are read a chunk of rows at a time (here 4, then 2): every row has its
    own, the last, partial chunk's too."""
    settings.TONGXIN = {**settings.TONGXIN, "BULK_BATCH_SIZE": 4}
    expected = counsellors_and_contacts(world)
    channels = {"phone": "电话", "message": "消息", "visit": "走访"}
    outcomes = {"reached": "已联系上", "not_reached": "未联系上"}

    _headers, rows = table(workbook(get(client, world["A"].counsellor, "missing"))["未报名单"])

    assert rows.keys() == expected.keys()
    for number, want in expected.items():
        row = {header: value or "" for header, value in rows[number].items()}  # an empty cell reads as None
        at = want.contacted_at.strftime("%Y-%m-%d %H:%M") if want.contacted_at else ""
        assert (row["负责辅导员"], row["最近联系时间"]) == (want.counsellor, at), number
        assert row["联系方式"] == channels.get(want.channel or "", ""), number
        assert row["联系结果"] == outcomes.get(want.outcome or "", ""), number
        assert row["联系人"] == (want.by or ""), number


def test_missing_list_of_a_coordinator_masks_phones(world, client, slots):
    a = world["A"]

    _headers, rows = table(workbook(get(client, a.coordinator, "missing"))["未报名单"])

    assert rows[a.students[0].student_number]["手机"] == f"{a.students[0].phone[:3]}****{a.students[0].phone[-4:]}"


def test_class_monitor_gets_a_names_only_missing_list_of_their_class(world, client, slots):
    a = world["A"]

    response = get(client, a.monitor, "missing")

    headers, rows = table(workbook(response)["未报名单"])
    assert headers == ["学号", "姓名", "班级"]
    assert set(rows) == numbers(a.students[:3])
    record = ExportRecord.objects.get()
    assert (record.user, record.kind, record.row_count, record.parameters["detailed"]) == (
        a.monitor,
        ExportKind.MISSING,
        3,
        False,
    )


def test_logistics_is_refused_the_missing_list(world, client, slots):
    assert get(client, world["A"].logistics, "missing").status_code == 403


# -- the abnormal list -------------------------------------------------------------
def test_abnormal_list_has_flags_and_health_detail_in_chinese(world, client, slots):
    a, b = world["A"], world["B"]
    fever(a.students[0])
    submit(a.students[1])  # healthy
    fever(b.students[0])

    _headers, rows = table(workbook(get(client, a.counsellor, "abnormal"))["异常名单"])

    assert list(rows) == [today().isoformat()]  # keyed by date: one row
    row = rows[today().isoformat()]
    assert row["学号"] == a.students[0].student_number
    assert row["体温(°C)"] == pytest.approx(38.4)
    assert row["症状"] == "咳嗽"
    assert "体温异常" in row["异常提示"] and "有症状" in row["异常提示"]
    assert row["时段"] == "晨检"


@pytest.mark.parametrize("persona", ["monitor", "logistics"])
def test_roles_without_health_data_are_refused_the_abnormal_list(world, client, slots, persona):
    fever(world["A"].students[0])

    response = get(client, getattr(world["A"], persona), "abnormal")

    assert response.status_code == 403
    assert not ExportRecord.objects.exists()


def test_a_student_is_refused_every_ledger_and_anonymous_users_are_sent_to_log_in(world, client, slots):
    for name in ("stay", "rollup", "missing", "abnormal"):
        assert get(client, world["A"].student_user, name).status_code == 403
    client.logout()
    response = client.get(reverse("ledgers:stay"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# -- parameters --------------------------------------------------------------------
def test_a_unit_outside_the_scope_is_not_found(world, client, slots):
    b = world["B"]
    for unit in (f"college:{b.college.pk}", f"building:{b.building.pk}", "campus:999999"):
        assert get(client, world["A"].coordinator, "stay", unit=unit).status_code == 404


@pytest.mark.parametrize(
    "params",
    [{"unit": "college"}, {"unit": "planet:1"}, {"date": "yesterday"}, {"slot": "midnight"}, {"date": "2999-01-01"}],
)
def test_malformed_parameters_are_a_bad_request(world, client, slots, params):
    response = get(client, world["A"].coordinator, "missing", **params)

    assert response.status_code == 400
    assert not ExportRecord.objects.exists()


def test_rollup_workbook_refuses_a_dorm_unit(world, client, slots):
    response = get(client, world.uni_admin, "rollup", unit=f"building:{world['A'].building.pk}")

    assert response.status_code == 400


# -- file name and audit -------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "stem"),
    [("stay", "留校学生情况统计表"), ("rollup", "每日汇总表"), ("missing", "未报名单"), ("abnormal", "异常名单")],
)
def test_download_keeps_a_chinese_file_name(world, client, slots, name, stem):
    response = get(client, world["A"].college_admin, name)

    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="')
    assert f"filename*=UTF-8''{quote(stem)}" in disposition
    assert today().strftime("%Y%m%d") in disposition
    filename = ExportRecord.objects.get().filename
    assert filename.startswith(stem) and filename.endswith(".xlsx")
    assert quote(filename) in disposition


def test_every_export_is_recorded_with_who_what_and_how_many_rows(world, client, slots):
    a = world["A"]
    fever(a.students[0])
    fever(a.students[1])

    get(client, a.counsellor, "stay")
    get(client, a.counsellor, "abnormal", slot="morning")

    stay, abnormal = ExportRecord.objects.order_by("id")
    assert (stay.user, stay.username, stay.kind, stay.row_count) == (a.counsellor, "counsellor_A", "stay", 6)
    assert stay.parameters == {"date": today().isoformat()}
    assert (abnormal.kind, abnormal.row_count, abnormal.parameters["slot"]) == ("abnormal", 2, "morning")
    assert abnormal.created_at is not None


def test_roster_export_is_recorded_too(world, client):
    client.force_login(world["A"].counsellor)

    response = client.get(reverse("admin:students_student_roster_export"))

    assert response.status_code == 200
    record = ExportRecord.objects.get()
    assert (record.user, record.kind, record.row_count) == (world["A"].counsellor, "roster", 6)
    assert record.filename.startswith("学生花名册")


def test_export_records_are_visible_to_the_university_admin_only_and_append_only(world, client, slots):
    get(client, world["A"].counsellor, "stay")
    record = ExportRecord.objects.get()
    changelist = reverse("admin:reports_exportrecord_changelist")

    client.force_login(world.uni_admin)
    response = client.get(changelist)
    assert response.status_code == 200 and response.context["cl"].result_count == 1
    assert client.get(reverse("admin:reports_exportrecord_change", args=[record.pk])).status_code == 200
    assert client.get(reverse("admin:reports_exportrecord_add")).status_code == 403
    assert client.post(reverse("admin:reports_exportrecord_delete", args=[record.pk])).status_code == 403
    client.post(reverse("admin:reports_exportrecord_change", args=[record.pk]), {"row_count": 0})
    record.refresh_from_db()
    assert record.row_count == 6

    for user in (world["A"].coordinator, world["A"].college_admin, world["A"].counsellor):
        client.force_login(user)
        assert client.get(changelist).status_code == 403


def test_admin_ledger_page_offers_what_the_role_may_export(world, client, slots):
    url = reverse("admin:reports_ledgerdownload_changelist")

    client.force_login(world["A"].coordinator)
    page = client.get(url).content.decode()
    for name in ("stay", "rollup", "missing", "abnormal"):
        assert reverse(f"ledgers:{name}") in page
    assert f"college:{world['A'].college.pk}" in page
    assert f"college:{world['B'].college.pk}" not in page

    client.force_login(world["A"].monitor)
    page = client.get(url).content.decode()
    assert reverse("ledgers:missing") in page
    assert reverse("ledgers:abnormal") not in page and reverse("ledgers:stay") not in page


# -- a fixed number of queries ---------------------------------------------------------
def _grow(world, per_class: int) -> None:
    """Add a class to each campus and ``per_class`` students (some abnormal, some
    tagged) to every class."""
    seq = Student.objects.count()
    for key in ("A", "B"):
        grade = world[key].grade
        n = SchoolClass.objects.filter(grade=grade).count() + 1
        SchoolClass.objects.create(grade=grade, code=f"{key}X{n}", name=f"新增{key}{n}班")
        for klass in SchoolClass.objects.filter(grade=grade):
            for _ in range(per_class):
                seq += 1
                student = Student.objects.create(
                    student_number=f"8{key}{seq:06d}",
                    name=f"加{seq}",
                    gender=Gender.FEMALE,
                    school_class=klass,
                    phone=f"139{seq:08d}",
                )
                if seq % 3 == 0:
                    fever(student)
                if seq % 4 == 0:
                    KeyAttentionTag.objects.create(
                        student=student, tag=AttentionTag.HARDSHIP, reason="困难", since=today()
                    )


@pytest.mark.parametrize("name", ["stay", "rollup", "missing", "abnormal"])
def test_query_count_does_not_grow_with_the_scope(world, client, slots, name):
    user = world.uni_admin
    client.force_login(user)
    url = reverse(f"ledgers:{name}")

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        assert response.status_code == 200
        return len(ctx)

    _grow(world, 2)
    small = queries()
    _grow(world, 40)
    large = queries()

    assert small == large
    small_rows, large_rows = ExportRecord.objects.order_by("id").values_list("row_count", flat=True)
    assert large_rows > small_rows
