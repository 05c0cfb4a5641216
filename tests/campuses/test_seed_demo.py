"""The demo university of ``manage.py seed_demo`` (campuses.demo): its shape, its
people, its logins and that every demo login sees exactly its own part."""

import json
import re
from collections import Counter
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, F
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campuses.demo import (
    DEMO_PASSWORD,
    _wipe,
    demo_reset,
    demo_seed,
    grade_years,
    unit_path,
)
from campuses.id_numbers import id_number_valid
from campuses.models import Assignment, Campus, College, Grade, Role, Room, SchoolClass, University
from campuses.scoping import scope_for
from students.models import EnrolmentStatus, KeyAttentionTag, Student

pytestmark = pytest.mark.django_db

SMALL = 300


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    # Authenticating ~200 listed logins with PBKDF2 would take a minute.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed(students: int = SMALL, **options) -> str:
    out = StringIO()
    call_command("seed_demo", students=students, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def demo(db):
    seed()


def ids(queryset) -> set[int]:
    return set(queryset.values_list("id", flat=True))


def snapshot() -> dict[str, object]:
    user_model = get_user_model()
    return {
        "counts": [m.objects.count() for m in (University, Campus, College, Grade, SchoolClass, Room, Student)],
        "users": user_model.objects.count(),
        "assignments": sorted(Assignment.objects.values_list("id", flat=True)),
        "students": sorted(Student.objects.values_list("id", "student_number", "name", "room_id", "bed")),
    }


# -- shape -------------------------------------------------------------------
def test_three_campuses_and_at_least_twelve_colleges(demo):
    assert University.objects.get().name == "同心大学"
    assert sorted(Campus.objects.values_list("name", flat=True)) == sorted(["中心校区", "南湖校区", "威海校区"])
    assert College.objects.count() >= 12
    assert College.objects.filter(name="法学院(威海)", campus__name="威海校区").exists()
    assert set(College.objects.values_list("campus__code", flat=True)) == {"ZX", "NH", "WH"}


def test_four_grades_per_college_from_todays_date(demo):
    years = grade_years(timezone.localdate())
    for college in College.objects.all():
        assert sorted(college.grades.values_list("year", flat=True)) == sorted(years)
    assert set(Grade.objects.values_list("name", flat=True)) == {f"{y}级" for y in years}


def test_grade_years_turn_over_in_september():
    assert grade_years(timezone.datetime(2026, 8, 31).date()) == [2025, 2024, 2023, 2022]
    assert grade_years(timezone.datetime(2026, 9, 1).date()) == [2026, 2025, 2024, 2023]


def test_classes_hold_about_thirty_students(demo):
    sizes = list(SchoolClass.objects.annotate(n=Count("students")).values_list("n", flat=True))
    assert len(sizes) == SMALL // 30
    assert all(24 <= n <= 36 for n in sizes), sizes
    assert SchoolClass.objects.values("code").distinct().count() == len(sizes)
    assert all(re.fullmatch(r".+\d{4}-\d+班", name) for name in SchoolClass.objects.values_list("name", flat=True))


def test_denormalised_tree_columns_match_class_and_room(demo):
    assert not Student.objects.exclude(grade=F("school_class__grade")).exists()
    assert not Student.objects.exclude(college=F("school_class__grade__college")).exists()
    assert not Student.objects.exclude(campus=F("school_class__grade__college__campus")).exists()
    assert not Student.objects.exclude(room=None).exclude(building=F("room__building")).exists()
    assert not Student.objects.filter(room=None).exclude(building=None).exists()


# -- dorms -------------------------------------------------------------------
def test_every_campus_has_dorm_buildings(demo):
    for campus in Campus.objects.all():
        assert campus.buildings.exclude(code="Q01").count() >= 2
        assert campus.buildings.filter(name="留观楼").exists()


def test_no_room_holds_more_students_than_beds(demo):
    over = Room.objects.annotate(n=Count("students")).filter(n__gt=F("beds"))
    assert not over.exists()
    assert set(Room.objects.values_list("beds", flat=True)) <= {1, 4, 6}


def test_beds_are_unique_and_numbered_within_the_room(demo):
    pairs = list(Student.objects.exclude(room=None).values_list("room_id", "bed", "room__beds"))
    assert len(pairs) == len({(room, bed) for room, bed, _ in pairs})
    assert all(1 <= int(bed) <= beds for _, bed, beds in pairs)


def test_roommates_share_gender_campus_college_and_grade(demo):
    rooms: dict[int, set] = {}
    for room_id, gender, college_id, grade_id, campus_id, room_campus in Student.objects.exclude(room=None).values_list(
        "room_id", "gender", "college_id", "grade_id", "campus_id", "room__building__campus_id"
    ):
        assert campus_id == room_campus
        rooms.setdefault(room_id, set()).add((gender, college_id, grade_id))
    assert rooms and all(len(kinds) == 1 for kinds in rooms.values())


def test_only_suspended_students_have_no_bed(demo):
    assert not Student.objects.filter(room=None, enrolment_status=EnrolmentStatus.ENROLLED).exists()


# -- students ----------------------------------------------------------------
def test_id_numbers_have_valid_checksums_and_birthdays_fitting_the_grade(demo):
    for id_number, year, gender in Student.objects.values_list("id_number", "grade__year", "gender"):
        assert id_number_valid(id_number), id_number
        assert year - 21 <= int(id_number[6:10]) <= year - 17
        assert int(id_number[16]) % 2 == (1 if gender == "M" else 0)


def test_student_numbers_are_text_and_keep_leading_zeros(demo):
    numbers = list(Student.objects.values_list("student_number", flat=True))
    assert all(isinstance(n, str) and n.isdigit() and 10 <= len(n) <= 12 for n in numbers)
    leading_zero = [n for n in numbers if n.startswith("0")]
    assert leading_zero
    student = Student.objects.select_related("user", "school_class").get(student_number=leading_zero[0])
    assert student.user.username == leading_zero[0]
    assert student.student_number.startswith(student.school_class.code)


def test_contact_data_looks_real(demo):
    for phone, guardian_phone, guardian, province, city in Student.objects.values_list(
        "phone", "guardian_phone", "guardian_name", "hometown_province", "hometown_city"
    ):
        assert re.fullmatch(r"1[3-9]\d{9}", phone) and re.fullmatch(r"1[3-9]\d{9}", guardian_phone)
        assert guardian
        assert re.fullmatch(r"\d{2}0000", province) and city[:2] == province[:2] and city.endswith("00")
    provinces = Counter(Student.objects.values_list("hometown_province", flat=True))
    assert provinces.most_common(1)[0][0] == "370000"  # the university's own province


def test_whereabouts_are_mostly_on_campus(demo):
    places = Counter(Student.objects.values_list("whereabouts", flat=True))
    assert places["on_campus"] > 0.8 * SMALL
    assert len(places) >= 3


def test_about_two_percent_carry_a_key_attention_tag(demo):
    tags = KeyAttentionTag.objects.all()
    assert tags.count() == round(SMALL * 0.02)
    assert all(t.reason and t.created_by_id for t in tags)
    assert not tags.exclude(until=None).filter(until__lt=F("since")).exists()


def test_same_seed_builds_the_same_university(demo):
    before = list(Student.objects.order_by("student_number").values_list("student_number", "name", "id_number"))
    seed(reset=True)
    after = list(Student.objects.order_by("student_number").values_list("student_number", "name", "id_number"))
    assert before == after
    seed(reset=True, seed=7)
    assert list(Student.objects.order_by("student_number").values_list("student_number", "name", "id_number")) != before


# -- staff -------------------------------------------------------------------
def test_every_role_has_at_least_one_user(demo):
    held = set(Assignment.objects.values_list("role", flat=True))
    assert held == set(Role.values)


def test_staff_per_unit(demo):
    assert Assignment.objects.filter(role=Role.UNIVERSITY_ADMIN, university__isnull=False).count() == 1
    for role in (Role.CAMPUS_COORDINATOR, Role.LOGISTICS_OFFICER, Role.PSYCHOLOGICAL_COUNSELLOR):
        assert set(Assignment.objects.filter(role=role).values_list("campus_id", flat=True)) == ids(Campus.objects)
    for role in (Role.COLLEGE_ADMIN, Role.DUTY_COUNSELLOR):
        assert set(Assignment.objects.filter(role=role).values_list("college_id", flat=True)) == ids(College.objects)
    assert set(Assignment.objects.filter(role=Role.COUNSELLOR).values_list("grade_id", flat=True)) == ids(Grade.objects)
    per_user = Counter(Assignment.objects.filter(role=Role.COUNSELLOR).values_list("user_id", flat=True))
    assert max(per_user.values()) == 2  # some counsellors hold two grades
    staff = get_user_model().objects.filter(assignments__isnull=False).distinct()
    assert all(u.is_staff and u.first_name and u.last_name for u in staff)


def test_duty_roster_covers_the_next_seven_days(demo):
    today = timezone.localdate()
    for duty in Assignment.objects.filter(role=Role.DUTY_COUNSELLOR):
        assert duty.valid_from <= today and (duty.valid_to - today).days >= 7


def test_class_monitor_is_a_student_of_their_class(demo):
    monitors = Assignment.objects.filter(role=Role.CLASS_MONITOR).select_related("user__student")
    assert monitors.count() == SchoolClass.objects.count()
    for assignment in monitors:
        assert assignment.user.student.school_class_id == assignment.school_class_id
        assert assignment.user.is_staff
        assert assignment.user.username == assignment.user.student.student_number


def test_students_log_in_with_their_student_number(demo):
    users = get_user_model().objects.filter(student__isnull=False)
    assert users.count() == Student.objects.count()
    assert not users.filter(is_staff=True).exclude(assignments__role=Role.CLASS_MONITOR).exists()
    assert get_user_model().objects.get(username="admin").is_superuser


# -- idempotence and reset ---------------------------------------------------
def test_second_run_without_reset_changes_nothing(demo):
    before = snapshot()
    out = seed(students=600)
    assert "未做任何修改" in out
    assert snapshot() == before


def test_reset_rebuilds_the_demo(demo):
    old_students = ids(Student.objects)
    out = seed(students=150, reset=True)
    assert "演示数据已生成" in out
    assert Student.objects.count() == 150
    assert not ids(Student.objects) & old_students
    assert University.objects.count() == 1
    user_model = get_user_model()
    assert user_model.objects.filter(student__isnull=False).count() == 150
    # no stale logins: every user is the superuser, a student or holds a duty
    assert not user_model.objects.filter(student=None, assignments=None, is_superuser=False).exists()
    assert Student.history.count() == 0  # seeding writes no history; the reset wiped the old rows


def test_reset_follows_protecting_keys_down_the_tree(demo):
    # Campus→University, College→Campus, ... and Student→SchoolClass all PROTECT in
    # normal use; wiping the university takes everything under it.
    _wipe(University.objects.all())
    assert not any(m.objects.exists() for m in (Campus, College, Grade, SchoolClass, Room, Student, KeyAttentionTag))


# -- accounts file -----------------------------------------------------------
def test_accounts_file_logins_authenticate_and_match_their_duty(db, tmp_path):
    path = tmp_path / "demo" / "accounts.json"
    out = seed(accounts_file=path)
    assert str(path) in out
    accounts = json.loads(path.read_text(encoding="utf-8"))
    roles = Counter(a["role"] for a in accounts)
    assert set(Role.values) <= set(roles)
    assert roles["student"] == 10
    assert roles["class_monitor"] == SchoolClass.objects.count()
    request = RequestFactory().post("/admin/login/", REMOTE_ADDR="10.0.0.1")
    for account in accounts:
        assert set(account) == {"username", "password", "role", "role_display", "unit", "unit_level", "name"}
        assert account["password"] == DEMO_PASSWORD
        user = authenticate(request, username=account["username"], password=account["password"])
        assert user is not None, account["username"]
        assert account["name"] == f"{user.last_name}{user.first_name}"
        if account["role"] == "superuser":
            assert user.is_superuser
        elif account["role"] == "student":
            assert account["unit"] == unit_path(user.student.school_class)
            assert not user.assignments.exists()
        else:
            assert account["role_display"] == Role(account["role"]).label
            matching = [
                a
                for a in user.assignments.filter(role=account["role"])
                if a.unit_field == account["unit_level"] and unit_path(a.unit) == account["unit"]
            ]
            assert matching, account
    assert accounts[1]["unit"] == "同心大学"
    counsellor = next(a for a in accounts if a["role"] == "counsellor")
    assert re.fullmatch(r"同心大学/.+校区/.+/\d{4}级", counsellor["unit"])


def test_accounts_file_is_written_when_the_demo_already_exists(demo, tmp_path):
    path = tmp_path / "accounts.json"
    seed(accounts_file=path)
    assert len(json.loads(path.read_text(encoding="utf-8"))) > 100


# -- every demo login sees exactly its part ------------------------------------
def sees(user) -> set[int]:
    return ids(scope_for(user).students())


def test_each_demo_login_sees_exactly_its_part(db):
    seed(students=2000)  # every grade of every college has classes
    students = Student.objects.all()
    assert all(Grade.objects.annotate(n=Count("classes")).values_list("n", flat=True))
    for assignment in Assignment.objects.select_related("user").exclude(role=Role.CLASS_MONITOR):
        user = assignment.user
        if assignment.role == Role.COUNSELLOR:
            grade_ids = user.assignments.values_list("grade_id", flat=True)
            expected = students.filter(grade_id__in=grade_ids)
        elif assignment.role == Role.UNIVERSITY_ADMIN:
            expected = students
        else:
            expected = students.filter(
                **{f"{assignment.unit_field}_id": getattr(assignment, f"{assignment.unit_field}_id")}
            )
        assert sees(user) == ids(expected), user.username
    two_grades = Counter(Assignment.objects.filter(role=Role.COUNSELLOR).values_list("user_id", flat=True))
    assert any(n == 2 for n in two_grades.values())


def test_coordinator_sees_exactly_their_campus(demo):
    for campus in Campus.objects.all():
        coordinator = get_user_model().objects.get(username=f"coord_{campus.code.lower()}")
        assert sees(coordinator) == ids(Student.objects.filter(campus=campus))


def test_monitor_sees_exactly_their_class_and_student_only_themself(demo):
    for assignment in Assignment.objects.filter(role=Role.CLASS_MONITOR).select_related("user"):
        assert sees(assignment.user) == ids(Student.objects.filter(school_class_id=assignment.school_class_id))
    for student in Student.objects.exclude(user__assignments__isnull=False).select_related("user")[:20]:
        assert sees(student.user) == {student.id}


# -- speed -------------------------------------------------------------------
def test_query_count_grows_by_batches_not_per_student(db):
    with CaptureQueriesContext(connection) as small:
        demo_seed(students=300)
    demo_reset()
    with CaptureQueriesContext(connection) as large:
        demo_seed(students=900)
    extra = len(large.captured_queries) - len(small.captured_queries)
    # SQLite inserts ~45 students per statement (999 parameters), PostgreSQL 2,000.
    assert extra < (900 - 300) / 10, (len(small.captured_queries), len(large.captured_queries))
