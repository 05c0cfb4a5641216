"""The nightly roll-up: equal to an independent recomputation from the raw rows on
randomised data, identical on a rerun, convergent after a killed run, and a fixed
handful of queries whatever the size."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reports.models import CheckinSlot, DailyReport, Excusal, ExcusalReason
from reports.rollup import rollup_compile, rollup_compute, rollup_compute_slots
from reports.rollup_models import FIGURES, Level, RollupRun, RollupSnapshot
from reports.services import ReportAnswer, report_submit_proxy
from students.models import AttentionTag, EnrolmentStatus, Gender, KeyAttentionTag, Student
from tests.reports.checkin import local, make_slots, submit

pytestmark = pytest.mark.django_db

DAY = dt.datetime.now(tz=dt.UTC).date() - dt.timedelta(days=3)


def populate(world, rng: random.Random, extra_per_class: int) -> None:
    """Add students, then reports (on time, late, proxy, feverish, at home), excusals,
    tags and non-enrolled students at random for DAY."""
    seq = 0
    for key in ("A", "B"):
        ns = world[key]
        for klass in ns.classes:
            for _ in range(extra_per_class):
                seq += 1
                Student.objects.create(
                    student_number=f"9{key}{seq:06d}",
                    name=f"随机{seq}",
                    gender=rng.choice([Gender.MALE, Gender.FEMALE]),
                    school_class=klass,
                    whereabouts=rng.choice(["on_campus", "on_campus", "home", "elsewhere", "internship"]),
                    enrolment_status=rng.choice([EnrolmentStatus.ENROLLED] * 9 + [EnrolmentStatus.SUSPENDED]),
                )
    for student in Student.objects.select_related("campus"):
        key = "A" if student.campus_id == world["A"].campus.id else "B"
        codes = ["morning", "noon"] if key == "A" else ["morning"]
        if rng.random() < 0.15:
            Excusal.objects.create(
                student=student,
                reason=ExcusalReason.IN_HOSPITAL,
                starts_on=DAY - dt.timedelta(days=rng.randint(0, 3)),
                ends_on=rng.choice([None, DAY, DAY + dt.timedelta(days=2)]),
            )
        if rng.random() < 0.1:  # an excusal that ended before DAY counts for nothing
            Excusal.objects.create(
                student=student,
                reason=ExcusalReason.ON_LEAVE,
                starts_on=DAY - dt.timedelta(days=9),
                ends_on=DAY - dt.timedelta(days=2),
            )
        for tag in rng.sample(list(AttentionTag.values), k=rng.choice([0, 0, 0, 1, 2])):
            since = DAY - dt.timedelta(days=rng.randint(0, 10))
            until = rng.choice([None, DAY, since])  # until == since < DAY: ended before DAY
            KeyAttentionTag.objects.create(student=student, tag=tag, reason="随机", since=since, until=until)
        for code in codes:
            roll = rng.random()
            if roll < 0.25:
                continue  # missing
            temperature = rng.choice(["36.4", "36.8", "37.3", "38.1"])
            values = {
                "temperature": temperature,
                "whereabouts": rng.choice(["on_campus", "home", "elsewhere"]),
                "health_status": rng.choice(["healthy", "healthy", "quarantine"]),
            }
            if values["whereabouts"] != "on_campus":
                values.update(province_code="370000", city_code="370100")
            if roll < 0.35:
                report_submit_proxy(
                    actor=world[key].counsellor,
                    student_id=student.pk,
                    slot_code=code,
                    answer=ReportAnswer.clean(**values),
                    on=DAY,
                    now=local(20, 0, day=DAY),
                )
                continue
            late = rng.random() < 0.3
            on_time, after_due = ((8, 0), (9, 30)) if code == "morning" else ((13, 0), (14, 15))
            submit(student, when=local(*(after_due if late else on_time), day=DAY), slot=code, **values)


def recompute(on: dt.date, slot_code: str) -> dict[tuple[str, int], dict]:
    """The figures, counted one student at a time from the raw rows."""
    slots = {s.campus_id: s for s in CheckinSlot.objects.filter(code=slot_code, active=True)}
    totals: dict[tuple[str, int], dict] = defaultdict(lambda: {**dict.fromkeys(FIGURES, 0), "tags": Counter()})
    for student in Student.objects.select_related("school_class__grade__college__campus"):
        slot = slots.get(student.campus_id)
        if slot is None or student.enrolment_status != EnrolmentStatus.ENROLLED:
            continue
        excused = any(
            e.starts_on <= on and (e.ends_on is None or e.ends_on >= on)
            for e in Excusal.objects.filter(student=student)
        )
        report = DailyReport.objects.filter(student=student, date=on, slot=slot).first()
        row = dict.fromkeys(FIGURES, 0)
        row["expected"] = int(not excused)
        row["excused"] = int(excused)
        if not excused:
            row["reported"] = int(report is not None)
            row["missing"] = int(report is None)
            if report is not None:
                row["late"] = int(report.late)
                row["proxy"] = int(report.source == "proxy")
                row["abnormal"] = int(report.abnormal)
                row["fever"] = int(report.temperature is not None and report.temperature >= Decimal("37.3"))
        row["quarantine"] = int(report is not None and report.health_status == "quarantine")
        where = report.whereabouts if report else student.whereabouts
        row["on_campus"] = int(where == "on_campus")
        row["home"] = int(where == "home")
        row["elsewhere"] = int(where not in ("on_campus", "home"))
        tags = {
            t.tag
            for t in KeyAttentionTag.objects.filter(student=student)
            if t.since <= on and (t.until is None or t.until >= on)
        }
        klass = student.school_class
        for key in (
            (Level.SCHOOL_CLASS, klass.id),
            (Level.GRADE, klass.grade_id),
            (Level.COLLEGE, klass.grade.college_id),
            (Level.CAMPUS, klass.grade.college.campus_id),
            (Level.UNIVERSITY, klass.grade.college.campus.university_id),
        ):
            for name in FIGURES:
                totals[key][name] += row[name]
            totals[key]["tags"].update(tags)
    return {key: {**{n: v[n] for n in FIGURES}, "tags": dict(v["tags"])} for key, v in totals.items()}


def stored(on: dt.date, slot_code: str) -> dict[tuple[str, int], dict]:
    return {
        (s.level, s.unit_id): {**s.figures(), "tags": s.tags}
        for s in RollupSnapshot.objects.filter(date=on, slot_code=slot_code)
    }


@pytest.mark.parametrize("seed", range(12))
def test_snapshots_equal_an_independent_recomputation(world, seed):
    make_slots(world)
    populate(world, random.Random(seed), extra_per_class=random.Random(seed).randint(2, 8))
    for code in ("morning", "noon"):
        rollup_compile(on=DAY, slot_code=code)
        assert stored(DAY, code) == recompute(DAY, code)
    # campus B has no noon slot: none of its units appear in the noon roll-up
    assert not RollupSnapshot.objects.filter(slot_code="noon", campus_id=world["B"].campus.id).exists()


def test_rerun_gives_identical_snapshots(world):
    make_slots(world)
    populate(world, random.Random(99), extra_per_class=5)
    rollup_compile(on=DAY, slot_code="morning")
    first = stored(DAY, "morning")
    ids = set(RollupSnapshot.objects.values_list("level", "unit_id", "expected", "reported", "missing"))
    rollup_compile(on=DAY, slot_code="morning")
    assert stored(DAY, "morning") == first
    assert set(RollupSnapshot.objects.values_list("level", "unit_id", "expected", "reported", "missing")) == ids
    assert RollupRun.objects.get(date=DAY, slot_code="morning").finished_at is not None


def test_run_killed_half_way_leaves_previous_state_and_rerun_converges(world):
    make_slots(world)
    populate(world, random.Random(5), extra_per_class=4)
    rollup_compile(on=DAY, slot_code="morning")
    before = stored(DAY, "morning")
    # a new late report, then a run that dies while writing
    late_student = Student.objects.create(
        student_number="8A000001", name="迟到者", gender=Gender.MALE, school_class=world["A"].classes[0]
    )
    report_submit_proxy(
        actor=world["A"].counsellor,
        student_id=late_student.pk,
        slot_code="morning",
        answer=ReportAnswer.clean(temperature="36.6"),
        on=DAY,
        now=local(22, 0, day=DAY),
    )
    # Killed after the day's old snapshots are deleted, before the new ones are written.
    killed = mock.patch("reports.rollup._compile_sql", side_effect=RuntimeError("killed"))
    with killed, pytest.raises(RuntimeError):
        rollup_compile(on=DAY, slot_code="morning")
    assert stored(DAY, "morning") == before
    rollup_compile(on=DAY, slot_code="morning")
    after = stored(DAY, "morning")
    assert after == recompute(DAY, "morning")
    assert (
        after[(Level.UNIVERSITY, world.university.id)]["reported"]
        == before[(Level.UNIVERSITY, world.university.id)]["reported"] + 1
    )


def test_live_subtree_figures_equal_the_snapshot(world):
    make_slots(world)
    populate(world, random.Random(3), extra_per_class=3)
    rollup_compile(on=DAY, slot_code="morning")
    snap = stored(DAY, "morning")
    live = rollup_compute(on=DAY, slot_code="morning", level=Level.COLLEGE, unit_id=world["A"].college.id)
    college = live.get(Level.COLLEGE, world["A"].college.id)
    assert {**college.counts, "tags": college.tags} == snap[(Level.COLLEGE, world["A"].college.id)]
    assert [c.unit_id for c in live.children(Level.COLLEGE, world["A"].college.id)] == [world["A"].grade.id]
    assert live.get(Level.COLLEGE, world["B"].college.id) is None


@pytest.mark.parametrize("unit", [None, "college_A", "grade_A", "class_A"])
def test_every_slot_in_one_statement_equals_each_slot_compiled(world, unit):
    """The live page's one statement for all of a day's slots gives, per slot, what the
    nightly compile of that slot alone stored — for the university and a subtree."""
    make_slots(world)
    populate(world, random.Random(11), extra_per_class=4)
    for code in ("morning", "noon"):
        rollup_compile(on=DAY, slot_code=code)
    level, unit_id = {
        None: (None, None),
        "college_A": (Level.COLLEGE, world["A"].college.id),
        "grade_A": (Level.GRADE, world["A"].grade.id),  # excusals and tags read for its students only
        "class_A": (Level.SCHOOL_CLASS, world["A"].classes[0].id),
    }[unit]
    with CaptureQueriesContext(connection) as captured:
        both = rollup_compute_slots(on=DAY, slot_codes=["morning", "noon", "morning"], level=level, unit_id=unit_id)
    assert sum("WITH c AS" in q["sql"] for q in captured.captured_queries) == 1
    assert list(both) == ["morning", "noon"]
    for code, rollup in both.items():
        snap = stored(DAY, code)
        assert rollup.units, code
        for key, figures in rollup.units.items():
            if unit is None or key == (level, unit_id) or key[0] == Level.SCHOOL_CLASS:
                # the whole tree, or the unit itself and its classes (the levels above a
                # subtree count that subtree only)
                assert {**figures.counts, "tags": figures.tags} == snap[key], (code, key)
    # campus B runs no noon slot: the noon figures hold campus A only
    assert not any(u.campus_id == world["B"].campus.id for u in both["noon"].units.values())
    assert rollup_compute_slots(on=DAY, slot_codes=[]) == {}


@pytest.mark.parametrize("extra", [1, 12])
def test_rollup_costs_a_fixed_number_of_queries(world, extra):
    make_slots(world)
    populate(world, random.Random(extra), extra_per_class=extra)
    with CaptureQueriesContext(connection) as captured:
        rollup_compile(on=DAY, slot_code="morning")
    statements = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    # The run's row (locked read, insert), the delete, the classes into a temporary
    # table (dropped before and after), every level written from it in one statement,
    # the run's update — and on PostgreSQL the transaction settings of the read.  The
    # same at any size: a query per class or per student would show here.
    assert len(statements) == 8 + (connection.vendor == "postgresql"), "\n".join(statements)
    assert sum("set_config('jit'" in sql for sql in statements) == (connection.vendor == "postgresql")
