"""campuses.bulk: set-based writes store values exactly as the ORM would, and a row of
the wrong width is refused (COPY / executemany would misalign every column after it)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from campuses.bulk import insert_rows
from reports.rollup_models import Level, RollupSnapshot

FIELDS = [f for f in RollupSnapshot._meta.concrete_fields if not f.primary_key]


def _row(unit_id: int, **values) -> list:
    base = {f.attname: f.get_default() for f in FIELDS}
    base.update(
        date=dt.date(2026, 11, 30),
        slot_code="morning",
        level=Level.SCHOOL_CLASS,
        unit_id=unit_id,
        unit_name=f"班级{unit_id}",
        computed_at=timezone.now().replace(microsecond=123456),
        **values,
    )
    return [base[f.attname] for f in FIELDS]


@pytest.mark.django_db
def test_insert_rows_stores_what_the_orm_reads_back():
    rows = [_row(1, expected=30, reported=29, tags={"fever": 2, "hardship": 1}), _row(2, parent_id=7, tags={})]
    assert insert_rows(RollupSnapshot, FIELDS, rows) == 2
    stored = {s.unit_id: s for s in RollupSnapshot.objects.all()}
    for row in rows:
        snapshot = stored[row[FIELDS.index(RollupSnapshot._meta.get_field("unit_id"))]]
        assert [getattr(snapshot, f.attname) for f in FIELDS] == row


@pytest.mark.django_db
def test_insert_rows_refuses_a_row_of_the_wrong_width():
    with pytest.raises(ValueError, match="values for"):
        insert_rows(RollupSnapshot, FIELDS, [_row(1), _row(2)[:-1]])


@pytest.mark.django_db
def test_insert_history_of_copies_the_stored_rows_with_the_history_columns(world):
    from campuses.bulk import insert_history_of
    from students.models import Student

    students = list(Student.objects.order_by("pk")[:3])
    assert len(students) == 3
    when = timezone.now().replace(microsecond=654321)
    Student.history.all().delete()
    written = insert_history_of(
        Student,
        column="student_number",
        values=[s.student_number for s in students[:2]],
        history_type="+",
        user=world.uni_admin,
        reason="花名册导入",
        date=when,
    )
    assert written == 2
    records = {h.id: h for h in Student.history.all()}
    assert set(records) == {students[0].pk, students[1].pk}  # the third was not asked for
    tracked = [f.attname for f in Student.history.model.tracked_fields]
    for student in students[:2]:
        record = records[student.pk]
        assert [getattr(record, name) for name in tracked] == [getattr(student, name) for name in tracked]
        assert (record.history_type, record.history_change_reason) == ("+", "花名册导入")
        assert record.history_user == world.uni_admin and record.history_date == when


@pytest.mark.django_db
def test_insert_history_of_splits_what_one_statement_may_not_carry(world, monkeypatch):
    from django.db import connection

    from campuses import bulk
    from students.models import Student

    pks = list(Student.objects.order_by("pk").values_list("pk", flat=True)[:5])
    Student.history.all().delete()
    monkeypatch.setattr(connection.features, "max_query_params", 6)  # 4 constants + 2 ids a statement
    written = bulk.insert_history_of(Student, column="id", values=pks, history_type="~", date=timezone.now())
    assert written == 5
    assert sorted(Student.history.values_list("id", flat=True)) == pks


@pytest.mark.django_db
def test_one_of_selects_what_an_in_lookup_selects(world):
    from django.db import connection

    from campuses.bulk import one_of
    from students.models import Student

    numbers = [*sorted(Student.objects.values_list("student_number", flat=True))[:5], "没有这个学号"]
    filters = list(one_of(Student, "student_number", numbers, chunk=2))
    assert len(filters) == (1 if connection.vendor == "postgresql" else 3)
    found = sorted(
        n for where in filters for n in Student.objects.filter(where).values_list("student_number", flat=True)
    )
    assert found == sorted(Student.objects.filter(student_number__in=numbers).values_list("student_number", flat=True))
    assert len(found) == 5
    ids = sorted(Student.objects.values_list("pk", flat=True))[:3]
    assert (
        sorted(
            pk
            for w in one_of(Student, "id", ids, chunk=2)
            for pk in Student.objects.filter(w).values_list("pk", flat=True)
        )
        == ids
    )
    assert list(one_of(Student, "id", [], chunk=2)) == []
