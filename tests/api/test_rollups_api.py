"""GET /api/v1/rollups/ and the sign-off / reopen endpoints, for every role."""

from __future__ import annotations

import datetime as dt

import pytest

from reports.rollup import rollup_compile
from reports.rollup_models import SignOff
from tests.reports.checkin import client_for, local, make_slots, submit
from tests.world import other

pytestmark = pytest.mark.django_db

URL = "/api/v1/rollups/"
DAY = dt.datetime.now(tz=dt.UTC).date() - dt.timedelta(days=2)


@pytest.fixture
def compiled(world):
    make_slots(world)
    for student in world["A"].students[:4] + world["B"].students[:1]:
        submit(student, when=local(8, 0, day=DAY))
    for code in ("morning", "noon"):
        rollup_compile(on=DAY, slot_code=code)


def get(user, **params):
    return client_for(user).get(URL, params)


def test_coordinator_sees_campus_and_colleges_from_snapshots(world, compiled):
    body = get(world["A"].coordinator, date=DAY.isoformat()).json()
    assert body["live"] is False
    assert (body["unit"]["level"], body["unit"]["id"]) == ("campus", world["A"].campus.id)
    morning = body["unit"]["slots"]["morning"]
    assert (morning["expected"], morning["reported"], morning["missing"], morning["completion"]) == (6, 4, 2, 66.7)
    assert [c["name"] for c in body["children"]] == [world["A"].college.name]
    assert body["children"][0]["signoff"] is None


def test_university_admin_sees_both_campuses(world, compiled):
    body = get(world.uni_admin, date=DAY.isoformat()).json()
    assert body["unit"]["level"] == "university"
    assert body["unit"]["slots"]["morning"]["reported"] == 5
    assert sorted(c["name"] for c in body["children"]) == sorted([world["A"].campus.name, world["B"].campus.name])


@pytest.mark.parametrize("persona", ["coordinator", "college_admin", "counsellor", "monitor", "logistics", "psych"])
def test_foreign_units_answer_404(world, compiled, persona):
    user = getattr(world["A"], persona)
    for unit in (
        f"campus:{world['B'].campus.id}",
        f"college:{world['B'].college.id}",
        f"grade:{world['B'].grade.id}",
        f"school_class:{world['B'].classes[0].id}",
        f"university:{world.university.id}",
    ):
        response = get(user, date=DAY.isoformat(), unit=unit)
        assert response.status_code == 404, (persona, unit)
        assert world["B"].college.name not in response.content.decode()


def test_counsellor_default_unit_is_their_grade_with_its_classes(world, compiled):
    body = get(world["A"].counsellor, date=DAY.isoformat()).json()
    assert (body["unit"]["level"], body["unit"]["id"]) == ("grade", world["A"].grade.id)
    assert {c["id"] for c in body["children"]} == {k.id for k in world["A"].classes}


def test_today_is_live_and_follows_new_reports(world, morning):
    make_slots(world)
    before = get(world["A"].coordinator).json()
    assert before["live"] is True and before["unit"]["slots"]["morning"]["reported"] == 0
    submit(world["A"].students[0], when=local(8, 0))
    after = get(world["A"].coordinator).json()
    assert after["unit"]["slots"]["morning"]["reported"] == 1
    assert after["unit"]["slots"]["morning"]["missing"] == 5


def test_bad_parameters_are_clear_400s(world, compiled):
    response = get(world["A"].coordinator, unit="campus-1")
    assert response.status_code == 400
    assert response.json()["errors"]["unit"][0]["code"] == "invalid"
    response = get(world["A"].coordinator, date="2026-13-01")
    assert response.json()["errors"]["date"][0]["code"] == "invalid"


def test_student_and_staff_without_duties_get_403(world, compiled):
    assert get(world["A"].student_user).status_code == 403
    assert get(world.nobody).status_code == 403


def test_signoff_and_reopen_through_the_api(world, compiled):
    counsellor = client_for(world["A"].counsellor)
    payload = {"date": DAY.isoformat(), "unit": f"grade:{world['A'].grade.id}", "remarks": "已核实"}
    response = counsellor.post(f"{URL}signoff/", payload, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["unit"]["signoff"]["state"] == "confirmed"
    college = {"date": DAY.isoformat(), "unit": f"college:{world['A'].college.id}"}
    assert counsellor.post(f"{URL}signoff/", college, format="json").status_code == 404  # not a unit they see
    monitor = client_for(world["A"].monitor)  # sees the grade's class only, and may not confirm
    assert monitor.post(f"{URL}signoff/", payload, format="json").status_code == 404
    admin = client_for(world["A"].college_admin)
    assert admin.post(f"{URL}signoff/", college, format="json").json()["unit"]["signoff"]["state"] == "confirmed"
    campus = {"date": DAY.isoformat(), "unit": f"campus:{world['A'].campus.id}"}
    coordinator = client_for(world["A"].coordinator)
    assert coordinator.post(f"{URL}signoff/", campus, format="json").status_code == 200
    top = {"date": DAY.isoformat(), "unit": f"university:{world.university.id}"}
    response = client_for(world.uni_admin).post(f"{URL}signoff/", top, format="json")
    assert response.status_code == 409
    assert response.json()["errors"]["detail"][0]["code"] == "children_pending"
    reopen = {"date": DAY.isoformat(), "unit": f"grade:{world['A'].grade.id}"}
    response = coordinator.post(f"{URL}reopen/", reopen, format="json")
    assert response.status_code == 400 and "reason" in response.json()["errors"]
    response = coordinator.post(f"{URL}reopen/", {**reopen, "reason": "数字不对"}, format="json")
    assert response.status_code == 200
    assert response.json()["unit"]["signoff"]["state"] == "reopened"
    assert SignOff.objects.get(level="campus").state == "reopened"


def test_signoff_on_foreign_unit_is_404(world, compiled):
    key = "A"
    response = client_for(world[key].counsellor).post(
        f"{URL}signoff/", {"date": DAY.isoformat(), "unit": f"grade:{world[other(key)].grade.id}"}, format="json"
    )
    assert response.status_code == 404
    assert not SignOff.objects.exists()


@pytest.mark.parametrize("classes", [1, 15])
def test_rollup_endpoint_costs_fixed_queries(world, compiled, classes, django_assert_max_num_queries):
    from campuses.models import SchoolClass
    from students.models import Gender, Student

    for n in range(classes):
        klass = SchoolClass.objects.create(grade=world["A"].grade, code=f"X{n}", name=f"加开{n}班")
        for seat in range(4):  # students, so that each class has figures and is a child row
            Student.objects.create(
                student_number=f"7{n:03d}{seat}", name=f"加{n}-{seat}", gender=Gender.MALE, school_class=klass
            )
    rollup_compile(on=DAY, slot_code="morning")
    client = client_for(world["A"].counsellor)
    with django_assert_max_num_queries(8):
        response = client.get(URL, {"date": DAY.isoformat()})
    assert len(response.json()["children"]) == classes + 2


def test_seeing_a_unit_is_not_enough_to_confirm_it(world, compiled):
    payload = {"date": DAY.isoformat(), "unit": f"grade:{world['A'].grade.id}"}
    for persona in ("psych", "logistics", "coordinator"):
        response = client_for(getattr(world["A"], persona)).post(f"{URL}signoff/", payload, format="json")
        assert response.status_code == 403, persona
        assert response.json()["errors"]["detail"][0]["code"] == "forbidden"
    assert not SignOff.objects.exists()
