"""The dashboard's units (reports.dashboard): the top units of a user's duties, each
with its chain up to the university, less those inside another (dashboard_units), and
a unit below them only where the scope reaches it (dashboard_unit) — read by one raw
statement per level, checked against the tree the world was built with."""

from __future__ import annotations

import pytest

from campuses.models import Assignment, Role
from reports.dashboard import UnitNode, UnitRef, dashboard_unit, dashboard_units
from reports.rollup_models import Level

pytestmark = pytest.mark.django_db


def _orm_node(level, unit) -> UnitNode:
    """The unit's chain, walked up its parents by the ORM."""
    parents = {Level.CAMPUS: "university", Level.COLLEGE: "campus", Level.GRADE: "college", Level.SCHOOL_CLASS: "grade"}
    levels = [Level.UNIVERSITY, Level.CAMPUS, Level.COLLEGE, Level.GRADE, Level.SCHOOL_CLASS]
    refs = []
    while True:
        refs.insert(0, UnitRef(level, unit.pk, unit.name))
        if level not in parents:
            break
        unit, level = getattr(unit, parents[level]), levels[levels.index(level) - 1]
    return UnitNode(ref=refs[-1], chain=tuple(refs))


def test_each_levels_unit_comes_with_its_chain_as_the_orm_walks_it(world, django_assert_num_queries):
    a = world["A"]
    cases = (
        (a.coordinator, Level.CAMPUS, a.campus),
        (a.college_admin, Level.COLLEGE, a.college),
        (a.counsellor, Level.GRADE, a.grade),
        (a.monitor, Level.SCHOOL_CLASS, a.classes[0]),
        (world.uni_admin, Level.UNIVERSITY, world.university),
    )
    for user, level, unit in cases:
        user.refresh_from_db()  # no scope cached on the instance
        with django_assert_num_queries(3):  # the assignments, the student record (none), the units
            nodes = dashboard_units(user=user)
        assert nodes == [_orm_node(level, unit)], level
        chain = nodes[0].chain
        assert [ref.level for ref in chain] == list(
            (Level.UNIVERSITY, Level.CAMPUS, Level.COLLEGE, Level.GRADE, Level.SCHOOL_CLASS)[: len(chain)]
        )
        assert chain[0].name == "同心大学" and chain[-1].name == unit.name


def test_units_inside_another_duty_are_left_out_and_the_rest_sorted(world):
    a, b = world["A"], world["B"]
    user = a.counsellor
    Assignment.objects.create(user=user, role=Role.COUNSELLOR, grade=b.grade)
    Assignment.objects.create(user=user, role=Role.CLASS_MONITOR, school_class=a.classes[1])  # inside grade A
    Assignment.objects.create(user=user, role=Role.COLLEGE_ADMIN, college=b.college)  # holds grade B

    nodes = dashboard_units(user=user)

    assert nodes == sorted(
        [_orm_node(Level.COLLEGE, b.college), _orm_node(Level.GRADE, a.grade)],
        key=lambda n: (n.level != Level.COLLEGE, n.ref.name),
    )


def test_no_duty_no_units(world):
    assert dashboard_units(user=world.nobody) == []
    assert dashboard_units(user=world["A"].expired_duty) == []


def test_a_unit_below_is_found_with_its_chain_only_within_the_scope(world):
    a, b = world["A"], world["B"]
    klass = a.classes[1]

    assert dashboard_unit(user=a.coordinator, level=Level.SCHOOL_CLASS, unit_id=klass.pk) == _orm_node(
        Level.SCHOOL_CLASS, klass
    )
    assert dashboard_unit(user=a.counsellor, level=Level.GRADE, unit_id=a.grade.pk) == _orm_node(Level.GRADE, a.grade)
    # Outside the scope, above it, or no such unit: nothing.
    assert dashboard_unit(user=a.coordinator, level=Level.SCHOOL_CLASS, unit_id=b.classes[0].pk) is None
    assert dashboard_unit(user=a.counsellor, level=Level.COLLEGE, unit_id=a.college.pk) is None
    assert dashboard_unit(user=a.coordinator, level=Level.CAMPUS, unit_id=999_999) is None
    assert dashboard_unit(user=world.nobody, level=Level.CAMPUS, unit_id=a.campus.pk) is None
    assert dashboard_unit(user=world.uni_admin, level=Level.CAMPUS, unit_id=b.campus.pk) == _orm_node(
        Level.CAMPUS, b.campus
    )
