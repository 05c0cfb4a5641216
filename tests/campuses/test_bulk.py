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
