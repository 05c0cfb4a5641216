"""Every endpoint × every persona, including each one reaching outside its scope: no
foreign object in any list, count or detail (404), and refusals with their codes.

The scene (built at 08:00, morning slot open): on each campus students 0, 1 and 3
reported (campus B: 0 and 3), student 3 of campus A with a fever; student 5 is
excused; student 2 has a contact-log entry.  So campus A misses students 2 and 4,
campus B misses 1, 2 and 4.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from reports.models import DailyReport, Excusal
from students.models import ContactLog
from tests.reports.checkin import answer, client_for, codes, local, submit, today

PERSONAS = [
    "anonymous",
    "nobody",
    "uni_admin",
    "student",
    "monitor",
    "counsellor",
    "college_admin",
    "coordinator",
    "logistics",
    "psych",
    "expired_duty",
]
#: Personas of campus A who may read health data of all of campus A's students.
HEALTH_A = {"counsellor", "college_admin", "coordinator", "psych"}
#: Personas of campus A who chase students (proxy, excusals, contact log).
CHASE_A = {"counsellor", "college_admin"}


def user_of(world, persona: str):
    if persona == "anonymous":
        return None
    if persona in {"nobody", "uni_admin"}:
        return getattr(world, persona)
    if persona == "student":
        return world["A"].student_user
    if persona == "expired_duty":
        return world["A"].expired_duty
    return getattr(world["A"], persona)


@pytest.fixture
def scene(world, slots, morning):
    a, b = world["A"], world["B"]
    reports = {}
    for key, indexes in (("A", (0, 1, 3)), ("B", (0, 3))):
        for i in indexes:
            student = world[key].students[i]
            fever = key == "A" and i == 3
            reports[(key, i)] = submit(student, temperature="38.2" if fever else "36.5").report
    excusals = {
        key: Excusal.objects.create(student=world[key].students[5], reason="in_hospital", starts_on=today())
        for key in ("A", "B")
    }
    contacts = {
        key: ContactLog.objects.create(student=world[key].students[2], contacted_at=local(7, 30), note="没接")
        for key in ("A", "B")
    }
    return {"world": world, "a": a, "b": b, "reports": reports, "excusals": excusals, "contacts": contacts}


def _ids(response, key="student"):
    assert response.status_code == 200, response.content
    body = response.json()
    rows = body["results"] if isinstance(body, dict) else body
    if isinstance(body, dict):
        assert body["count"] == len(rows)  # counts never include foreign rows
    return {row[key] for row in rows}


def _students(world, key, indexes):
    return {world[key].students[i].pk for i in indexes}


@pytest.mark.parametrize("persona", PERSONAS)
def test_report_list_shows_only_what_the_role_may_see(scene, persona):
    world = scene["world"]
    response = client_for(user_of(world, persona)).get("/api/v1/reports/")
    if persona == "anonymous":
        assert response.status_code == 401
        assert codes(response, "detail") == ["not_authenticated"]
        return
    expected = set()
    if persona == "student":
        expected = {world["A"].student.pk}
    elif persona in HEALTH_A:
        expected = _students(world, "A", (0, 1, 3))
    elif persona == "uni_admin":
        expected = _students(world, "A", (0, 1, 3)) | _students(world, "B", (0, 3))
    assert _ids(response) == expected


@pytest.mark.parametrize("persona", PERSONAS)
def test_foreign_report_detail_is_404(scene, persona):
    foreign = scene["reports"][("B", 0)]
    response = client_for(user_of(scene["world"], persona)).get(f"/api/v1/reports/{foreign.pk}/")
    if persona == "anonymous":
        assert response.status_code == 401
    elif persona == "uni_admin":
        assert response.status_code == 200
    else:
        assert response.status_code == 404
        assert codes(response, "detail") == ["not_found"]


@pytest.mark.parametrize("persona", PERSONAS)
def test_missing_list_by_role(scene, persona):
    world = scene["world"]
    response = client_for(user_of(world, persona)).get("/api/v1/reports/missing/", {"slot": "morning"})
    if persona == "anonymous":
        assert response.status_code == 401
        return
    if persona in {"nobody", "student", "logistics", "expired_duty"}:
        assert response.status_code == 403
        assert codes(response, "detail") == ["permission_denied"]
        return
    if persona == "monitor":
        # Names and student numbers of the monitor's own class, nothing else.
        rows = response.json()["results"]
        assert {row["student_number"] for row in rows} == {world["A"].students[2].student_number}
        assert all(set(row) == {"student_number", "name", "school_class_name"} for row in rows)
        return
    expected = _students(world, "A", (2, 4))
    if persona == "uni_admin":
        expected |= _students(world, "B", (1, 2, 4))
    assert _ids(response, "id") == expected


@pytest.mark.parametrize("persona", sorted(HEALTH_A))
def test_missing_list_of_a_foreign_unit_is_empty(scene, persona):
    world = scene["world"]
    client = client_for(user_of(world, persona))
    for params in ({"campus": world["B"].campus.pk}, {"unit": f"college:{world['B'].college.pk}"}):
        response = client.get("/api/v1/reports/missing/", {"slot": "morning", **params})
        assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.mark.parametrize("persona", PERSONAS)
def test_proxy_report_only_by_those_who_chase(scene, persona):
    world = scene["world"]
    target = world["A"].students[2]
    response = client_for(user_of(world, persona)).post(
        "/api/v1/reports/proxy/", answer(student=target.pk), format="json"
    )
    if persona == "anonymous":
        assert response.status_code == 401
    elif persona in CHASE_A:
        assert response.status_code == 201, response.content
        assert response.json()["source"] == "proxy"
    else:
        assert response.status_code == 403
        assert not DailyReport.objects.filter(student=target).exists()


@pytest.mark.parametrize("persona", sorted(CHASE_A))
def test_proxy_report_for_a_foreign_student_does_not_exist(scene, persona):
    world = scene["world"]
    foreign = world["B"].students[2]
    response = client_for(user_of(world, persona)).post(
        "/api/v1/reports/proxy/", answer(student=foreign.pk), format="json"
    )
    assert response.status_code == 400
    assert codes(response, "student") == ["does_not_exist"]
    assert not DailyReport.objects.filter(student=foreign).exists()


@pytest.mark.parametrize("persona", PERSONAS)
def test_excusal_list_and_detail_by_role(scene, persona):
    world = scene["world"]
    client = client_for(user_of(world, persona))
    response = client.get("/api/v1/excusals/")
    foreign = client.get(f"/api/v1/excusals/{scene['excusals']['B'].pk}/")
    if persona == "anonymous":
        assert response.status_code == foreign.status_code == 401
    elif persona in HEALTH_A:
        assert _ids(response) == {world["A"].students[5].pk}
        assert foreign.status_code == 404
    elif persona == "uni_admin":
        assert _ids(response) == {world["A"].students[5].pk, world["B"].students[5].pk}
        assert foreign.status_code == 200
    else:
        assert response.status_code == foreign.status_code == 403


@pytest.mark.parametrize("persona", PERSONAS)
def test_excusal_create_and_delete_by_role(scene, persona):
    world = scene["world"]
    client = client_for(user_of(world, persona))
    payload = {"student": world["A"].students[4].pk, "reason": "on_leave", "starts_on": today().isoformat()}
    created = client.post("/api/v1/excusals/", payload, format="json")
    deleted = client.delete(f"/api/v1/excusals/{scene['excusals']['A'].pk}/")
    foreign_delete = client.delete(f"/api/v1/excusals/{scene['excusals']['B'].pk}/")
    if persona == "anonymous":
        assert created.status_code == deleted.status_code == 401
    elif persona in CHASE_A:
        assert created.status_code == 201, created.content
        assert created.json()["created_by"] == user_of(world, persona).username
        assert deleted.status_code == 204
        assert foreign_delete.status_code == 404
        assert Excusal.objects.filter(pk=scene["excusals"]["B"].pk).exists()
    else:
        assert created.status_code == 403
        assert deleted.status_code in (403, 404)
        assert Excusal.objects.filter(pk=scene["excusals"]["A"].pk).exists()


@pytest.mark.parametrize("persona", sorted(CHASE_A))
def test_excusal_for_a_foreign_student_does_not_exist(scene, persona):
    world = scene["world"]
    payload = {"student": world["B"].students[4].pk, "reason": "on_leave", "starts_on": today().isoformat()}
    response = client_for(user_of(world, persona)).post("/api/v1/excusals/", payload, format="json")
    assert response.status_code == 400
    assert codes(response, "student") == ["does_not_exist"]


@pytest.mark.parametrize("persona", PERSONAS)
def test_contact_log_by_role(scene, persona):
    world = scene["world"]
    client = client_for(user_of(world, persona))
    listed = client.get("/api/v1/contacts/")
    foreign = client.get(f"/api/v1/contacts/{scene['contacts']['B'].pk}/")
    created = client.post(
        "/api/v1/contacts/", {"student": world["A"].students[4].pk, "outcome": "not_reached"}, format="json"
    )
    if persona == "anonymous":
        assert listed.status_code == foreign.status_code == created.status_code == 401
        return
    if persona in HEALTH_A | {"uni_admin"}:
        expected = {world["A"].students[2].pk}
        if persona == "uni_admin":
            expected.add(world["B"].students[2].pk)
        assert _ids(listed) == expected
        assert foreign.status_code == (200 if persona == "uni_admin" else 404)
    else:
        assert listed.status_code == foreign.status_code == 403
    if persona in CHASE_A:
        assert created.status_code == 201, created.content
        assert created.json()["contacted_by"] == user_of(world, persona).username
    else:
        assert created.status_code == 403


@pytest.mark.parametrize("persona", sorted(CHASE_A))
def test_mark_contacted_is_all_or_nothing(scene, persona):
    world = scene["world"]
    client = client_for(user_of(world, persona))
    mine = [world["A"].students[2].pk, world["A"].students[4].pk]
    before = ContactLog.objects.count()

    mixed = client.post("/api/v1/contacts/mark/", {"students": [*mine, world["B"].students[1].pk]}, format="json")
    assert mixed.status_code == 400
    assert codes(mixed, "students") == ["does_not_exist"]
    assert ContactLog.objects.count() == before

    marked = client.post("/api/v1/contacts/mark/", {"students": mine, "outcome": "reached"}, format="json")
    assert marked.status_code == 201
    assert {row["student"] for row in marked.json()} == set(mine)
    assert ContactLog.objects.count() == before + 2


@pytest.mark.parametrize("persona", PERSONAS)
def test_slots_of_my_campuses(scene, persona):
    world = scene["world"]
    response = client_for(user_of(world, persona)).get("/api/v1/slots/")
    if persona == "anonymous":
        assert response.status_code == 401
        return
    campuses = {row["campus"] for row in response.json()["results"]}
    if persona in {"nobody", "expired_duty"}:
        assert campuses == set()
    elif persona == "uni_admin":
        assert campuses == {world["A"].campus.pk, world["B"].campus.pk}
    else:
        assert campuses == {world["A"].campus.pk}


@pytest.mark.parametrize("persona", PERSONAS)
def test_checkin_today_is_for_students(scene, persona):
    response = client_for(user_of(scene["world"], persona)).get("/api/v1/checkin/today/")
    if persona == "anonymous":
        assert response.status_code == 401
    elif persona == "student":
        slots = {row["code"]: row for row in response.json()["slots"]}
        assert slots["morning"]["done"] is True and slots["morning"]["state"] == "open"
        assert slots["noon"]["done"] is False and slots["noon"]["state"] == "upcoming"
    else:
        assert response.status_code == 403
        assert codes(response, "detail") == ["not_a_student"]


@pytest.mark.parametrize("persona", PERSONAS)
def test_me(scene, persona):
    world = scene["world"]
    response = client_for(user_of(world, persona)).get("/api/v1/me/")
    if persona == "anonymous":
        assert response.status_code == 401
        return
    body = response.json()
    if persona == "student":
        # A student sees their own record in full.
        assert body["student"]["id_number"] == world["A"].student.id_number
        assert body["student"]["phone"] == world["A"].student.phone
        assert body["assignments"] == []
    else:
        assert body["student"] is None
    if persona == "counsellor":
        assert body["assignments"] == [
            {
                "role": "counsellor",
                "role_name": "辅导员",
                "unit_level": "grade",
                "unit_id": world["A"].grade.pk,
                "unit_name": world["A"].grade.name,
                "valid_from": None,
                "valid_to": None,
            }
        ]
    if persona == "expired_duty":
        assert body["assignments"] == []  # the roster ended yesterday


@pytest.mark.parametrize("persona", PERSONAS)
def test_follow_up_close_by_role(scene, persona):
    world = scene["world"]
    fever = scene["reports"][("A", 3)]
    response = client_for(user_of(world, persona)).post(
        f"/api/v1/reports/{fever.pk}/follow-up/", {"note": "已电话联系，已去校医院"}, format="json"
    )
    if persona == "anonymous":
        assert response.status_code == 401
    elif persona in CHASE_A:
        assert response.status_code == 200, response.content
        assert response.json()["follow_up"] == "closed"
    else:
        assert response.status_code in (403, 404)
        fever.refresh_from_db()
        assert fever.follow_up == "open"


def test_filtering_by_a_foreign_unit_yields_nothing(scene):
    world = scene["world"]
    client = client_for(world["A"].counsellor)
    for params in (
        {"campus": world["B"].campus.pk},
        {"college": world["B"].college.pk},
        {"school_class": world["B"].classes[0].pk},
        {"unit": f"grade:{world['B'].grade.pk}"},
        {"student": world["B"].student.pk},
    ):
        response = client.get("/api/v1/reports/", params)
        assert response.json()["count"] == 0, params


def test_anonymous_client_gets_401_everywhere(scene):
    client = APIClient()
    for url in ("/api/v1/me/", "/api/v1/reports/", "/api/v1/slots/", "/api/v1/excusals/", "/api/v1/contacts/"):
        assert client.get(url).status_code == 401
