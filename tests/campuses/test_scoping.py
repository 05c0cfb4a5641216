"""The one scoping function: every role against data inside and outside its scope."""

import datetime as dt

import pytest
from django.utils import timezone

from campuses.models import Assignment, Building, Campus, College, Grade, Role, Room, SchoolClass
from campuses.scoping import Scope, scope_for
from students.masking import mask_id_number, mask_phone
from students.models import Student
from tests.world import STAFF_PERSONAS, other

pytestmark = pytest.mark.django_db


def visible_numbers(user) -> set[str]:
    return set(scope_for(user).students().values_list("student_number", flat=True))


def numbers(students) -> set[str]:
    return {s.student_number for s in students}


@pytest.mark.parametrize("key", ["A", "B"])
@pytest.mark.parametrize("persona", sorted(STAFF_PERSONAS))
def test_staff_persona_sees_exactly_its_part(world, persona, key):
    ns = world[key]
    expected = numbers(ns.students) if STAFF_PERSONAS[persona] == "all" else numbers(ns.students[:3])
    seen = visible_numbers(getattr(ns, persona))
    assert seen == expected
    assert not seen & numbers(world[other(key)].students)


def test_student_sees_only_themself(world):
    assert visible_numbers(world["A"].student_user) == {world["A"].student.student_number}


def test_staff_without_duties_sees_nothing(world):
    assert visible_numbers(world.nobody) == set()
    assert not scope_for(world.nobody).units(Campus).exists()


def test_university_admin_sees_everyone(world):
    assert visible_numbers(world.uni_admin) == numbers(world["A"].students) | numbers(world["B"].students)


def test_expired_duty_roster_grants_nothing(world):
    assert visible_numbers(world["A"].expired_duty) == set()


def test_duty_roster_grants_its_college_on_its_dates(world):
    ns = world["A"]
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    assert scope_for(ns.expired_duty, on=yesterday).students().count() == len(ns.students)
    Assignment.objects.create(
        user=ns.expired_duty, role=Role.DUTY_COUNSELLOR, college=ns.college, valid_from=timezone.localdate()
    )
    ns.expired_duty._tongxin_scope = None
    assert visible_numbers(ns.expired_duty) == numbers(ns.students)


def test_inactive_user_sees_nothing(world):
    user = world["A"].coordinator
    user.is_active = False
    user.save()
    assert visible_numbers(user) == set()


def test_units_are_the_subtree_of_each_assignment(world):
    ns = world["A"]
    scope = scope_for(ns.counsellor)
    assert list(scope.units(Campus)) == []
    assert list(scope.units(College)) == []
    assert list(scope.units(Grade)) == [ns.grade]
    assert set(scope.units(SchoolClass)) == set(ns.classes)
    assert list(scope.units(Building)) == []
    coordinator = scope_for(ns.coordinator)
    assert list(coordinator.units(College)) == [ns.college]
    assert set(coordinator.units(Room)) == set(ns.rooms)
    assert not coordinator.units(Room).filter(building=world["B"].building).exists()


def test_assignable_rooms_are_the_own_campus_dorms_only(world):
    rooms = set(scope_for(world["A"].college_admin).assignable_rooms())
    assert rooms == set(world["A"].rooms)


def test_dorm_assignment_covers_the_students_of_the_room(world):
    ns = world["A"]
    Assignment.objects.create(user=world.nobody, role=Role.CLASS_MONITOR, room=ns.rooms[1])
    assert visible_numbers(world.nobody) == {s.student_number for s in ns.students if s.room_id == ns.rooms[1].id}


def test_student_list_is_one_query_whatever_the_depth(world, django_assert_num_queries):
    for user in (world["A"].coordinator, world["A"].monitor, world.uni_admin):
        scope = scope_for(user)
        with django_assert_num_queries(1):
            list(scope.students())


def test_scope_is_read_once_per_request(world, django_assert_num_queries):
    user = world["A"].counsellor
    with django_assert_num_queries(2):
        scope_for(user)
        scope_for(user)


def test_moving_a_class_keeps_denormalised_columns(world):
    student = world["A"].students[0]
    student.school_class = world["B"].classes[0]
    student.room = world["B"].rooms[0]
    student.bed = "4"
    student.save()
    student.refresh_from_db()
    assert (student.campus_id, student.college_id, student.grade_id, student.building_id) == (
        world["B"].campus.id,
        world["B"].college.id,
        world["B"].grade.id,
        world["B"].building.id,
    )
    assert student.student_number in visible_numbers(world["B"].counsellor)
    assert student.student_number not in visible_numbers(world["A"].counsellor)


def pii(user, student):
    row = scope_for(user).annotate_pii(Student.objects.filter(pk=student.pk)).get()
    return row.pii_phone, row.pii_id


def test_full_phone_and_id_only_for_roles_that_need_them(world):
    ns = world["A"]
    assert pii(ns.counsellor, ns.student) == (True, False)
    assert pii(ns.college_admin, ns.student) == (True, True)
    assert pii(ns.coordinator, ns.student) == (False, False)
    assert pii(ns.monitor, ns.student) == (False, False)
    assert pii(ns.logistics, ns.student) == (False, False)
    assert pii(world.uni_admin, ns.student) == (True, True)


def test_full_phone_is_decided_per_student_not_per_user(world):
    # A counsellor on campus A who also coordinates campus B: phones in full on A only.
    user = world["A"].counsellor
    Assignment.objects.create(user=user, role=Role.CAMPUS_COORDINATOR, campus=world["B"].campus)
    user._tongxin_scope = None
    assert pii(user, world["A"].student) == (True, False)
    assert pii(user, world["B"].student) == (False, False)


def test_masks():
    assert mask_id_number("110101199003071234") == "1101**********1234"
    assert mask_id_number("11010119900307123X") == "1101**********123X"
    assert mask_phone("13812341234") == "138****1234"
    assert mask_phone("") == ""
    assert mask_phone("12345") == "*****"


def test_assignment_needs_exactly_one_unit(world):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(user=world.nobody, role=Role.COUNSELLOR)
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(
            user=world.nobody, role=Role.COUNSELLOR, grade=world["A"].grade, college=world["A"].college
        )


def test_unit_names_unique_per_parent(world):
    from django.db import IntegrityError, transaction

    College.objects.create(campus=world["B"].campus, code="X9", name=world["A"].college.name.replace("中心", "南湖"))
    with pytest.raises(IntegrityError), transaction.atomic():
        College.objects.create(campus=world["A"].campus, code="ZZ", name=world["A"].college.name)
    with pytest.raises(IntegrityError), transaction.atomic():
        Room.objects.create(building=world["A"].building, number=world["A"].rooms[0].number)


def test_reaches_all_of_a_unit_only_through_a_grant_at_it_or_above(world):
    a = world["A"]
    grade = [
        ("university", world.university.pk),
        ("campus", a.campus.pk),
        ("college", a.college.pk),
        ("grade", a.grade.pk),
    ]
    klass = [*grade, ("school_class", a.classes[0].pk)]
    counsellor = scope_for(a.counsellor)  # holds the grade
    assert counsellor.reaches_all_of(grade, roles=[Role.COUNSELLOR])
    assert counsellor.reaches_all_of(klass, roles=[Role.COUNSELLOR])
    assert not counsellor.reaches_all_of(grade[:3], roles=[Role.COUNSELLOR])  # the college: only part of it
    assert not counsellor.reaches_all_of(grade, roles=[Role.CLASS_MONITOR])  # not through that role
    monitor = scope_for(a.monitor)  # holds class 1
    assert monitor.reaches_all_of(klass, roles=[Role.CLASS_MONITOR])
    assert not monitor.reaches_all_of(grade, roles=[Role.CLASS_MONITOR])
    assert scope_for(world.uni_admin).reaches_all_of(grade, roles=[Role.UNIVERSITY_ADMIN])  # a grant at the top
    assert Scope(user_id=None, everything=True).reaches_all_of(grade, roles=[Role.CLASS_MONITOR])  # a superuser


def test_fingerprint_is_what_the_user_sees_not_who_they_are(world):
    """Equal grants, in any order, give one fingerprint; any other grant, role, unit or
    an own student record gives another (reports.live_lists shares renderings by it)."""
    from campuses.scoping import Grant

    a, b = Grant("counsellor", "grade", 1), Grant("campus_coordinator", "campus", 2)
    base = Scope(user_id=1, grants=(a, b))
    assert Scope(user_id=2, grants=(b, a)).fingerprint() == base.fingerprint()
    others = [
        Scope(user_id=1, grants=(a,)),
        Scope(user_id=1, grants=(a, Grant("campus_coordinator", "campus", 3))),
        Scope(user_id=1, grants=(a, Grant("psychological_counsellor", "campus", 2))),
        Scope(user_id=1, grants=(a, Grant("campus_coordinator", "college", 2))),
        Scope(user_id=1, student_id=7, grants=(a, b)),
        Scope(user_id=1, everything=True),
    ]
    assert len({base.fingerprint(), *(s.fingerprint() for s in others)}) == len(others) + 1
    coordinator = world["A"].coordinator
    assert scope_for(coordinator).fingerprint() != scope_for(world["B"].coordinator).fingerprint()


def _sql_ids(scope: Scope, roles=None) -> set[int]:
    from django.db import connection

    condition, params = scope.student_sql("s", roles=roles)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT s.id FROM {Student._meta.db_table} s WHERE {condition}", params)
        return {row[0] for row in cursor.fetchall()}


def test_student_sql_selects_what_student_q_selects(world):
    """The scope's SQL for hand-written statements (the class page's roster) and its Q
    select the same students — every persona, through every role or only some, a
    student's own record, no grant, everything, a grant at the university, and grants
    at several levels at once."""
    from campuses.scoping import HEALTH_ROLES, Grant

    a, b = world["A"], world["B"]
    users = [getattr(world[key], p) for key in "AB" for p in sorted(STAFF_PERSONAS)]
    scopes = [scope_for(u) for u in [*users, world.uni_admin, world.nobody, a.student_user, a.expired_duty]]
    scopes += [
        Scope(user_id=None, everything=True),
        Scope(user_id=1, grants=(Grant(Role.COUNSELLOR, "university", world.university.pk),)),
        Scope(
            user_id=1,
            student_id=b.student.pk,
            grants=(
                Grant(Role.COUNSELLOR, "school_class", a.classes[0].pk),
                Grant(Role.CLASS_MONITOR, "grade", b.grade.pk),
                Grant(Role.LOGISTICS_OFFICER, "room", a.rooms[0].pk),
            ),
        ),
    ]
    seen_some = 0
    for scope in scopes:
        for roles in (None, HEALTH_ROLES, {Role.CLASS_MONITOR}):
            expected = set(Student.objects.filter(scope.student_q(roles=roles)).values_list("id", flat=True))
            assert _sql_ids(scope, roles) == expected, (scope, roles)
            seen_some += bool(expected) and expected != set(Student.objects.values_list("id", flat=True))
    assert seen_some >= 10  # the comparison is between real, partial selections
