"""A student's references to the unit trees: the database enforces the class and the
room; the copied units (grade, college, campus, building) carry no constraint of their
own — a roster import would look each up once per new student at commit — and are kept
in existence by the class's and the room's constraints and the units' own chain."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from campuses.models import Building
from campuses.scoping import Scope
from students.models import Student
from students.roster import roster_import
from tests.fixtures.roster import student_row, write_csv

EVERYTHING = Scope(user_id=None, everything=True)


def _student_foreign_keys() -> dict[str, str]:
    """column -> referenced table, of the constraints the database holds."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Student._meta.db_table)
    return {
        c["columns"][0]: c["foreign_key"][0]
        for c in constraints.values()
        if c["foreign_key"] and len(c["columns"]) == 1
    }


def _copy_of(student: Student, **changes) -> Student:
    """A new student row like ``student`` (bulk_create: no fill_hierarchy)."""
    values = {f.attname: getattr(student, f.attname) for f in Student._meta.concrete_fields if not f.primary_key} | {
        "student_number": f"{student.student_number}9",
        "user_id": None,
        "bed": "",
    }
    return Student(**(values | changes))


@pytest.mark.django_db
def test_only_the_class_room_and_account_are_constrained():
    keys = _student_foreign_keys()
    assert keys == {
        "school_class_id": "campuses_schoolclass",
        "room_id": "campuses_room",
        "user_id": "auth_user",
    }


def test_a_student_of_a_class_or_room_that_does_not_exist_is_refused(world):
    student = world["A"].students[0]
    for changes in ({"school_class_id": 987654}, {"room_id": 987654}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Student.objects.bulk_create([_copy_of(student, **changes)])
            connection.check_constraints(table_names=[Student._meta.db_table])


def test_deleting_a_copied_unit_still_goes_through_the_students_on_delete(world):
    """Without a constraint only Django's on_delete guards the copies: the students
    themselves must be among what protects a campus, college or grade (not only the
    unit's children), and a building's students must lose it."""
    ns = world["A"]
    for unit in (ns.campus, ns.college, ns.grade):
        with pytest.raises(ProtectedError) as refused, transaction.atomic():
            unit.delete()
        assert set(ns.students) <= set(refused.value.protected_objects), unit
    # A building no room is in (the students pointed at it directly, as no save would):
    # deleting it clears their copy rather than leaving an id that names nothing.
    empty = Building.objects.create(campus=ns.campus, code="EMPTY", name="空楼")
    Student.objects.filter(pk=ns.students[0].pk).update(building=empty)
    empty.delete()
    ns.students[0].refresh_from_db()
    assert (ns.students[0].campus_id, ns.students[0].building_id) == (ns.campus.pk, None)


def test_an_import_by_a_user_records_them_in_every_history_row(world, tmp_path):
    rows = [student_row(world, "A", seq=n, class_index=n % 2) for n in range(1, 4)]
    result = roster_import(source=write_csv(tmp_path / "r.csv", rows), scope=EVERYTHING, actor=world.uni_admin)
    assert result.imported and result.created == 3, result.errors
    history = Student.history.filter(student_number__in=[r["学号"] for r in rows])
    assert list(history.values_list("history_user_id", flat=True)) == [world.uni_admin.pk] * 3
    world.uni_admin.delete()  # who made the change is cleared, the change is kept
    assert list(history.values_list("history_user_id", flat=True)) == [None] * 3
