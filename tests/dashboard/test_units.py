"""The dashboard's top units (reports.dashboard.dashboard_units): each unit of the
user's duties with its chain up to the university, less those inside another, read
by one raw statement per level — checked against the chain the ORM walks
(``_node`` over ``select_related``, which ``dashboard_unit`` still uses)."""

from __future__ import annotations

import pytest

from campuses.models import Assignment, Role
from reports.dashboard import _node, _with_chain, dashboard_units
from reports.rollup_models import Level

pytestmark = pytest.mark.django_db


def _orm_node(level, unit):
    return _node(level, _with_chain(level).get(pk=unit.pk))


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
