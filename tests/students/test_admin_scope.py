"""The admin through the test client: no role can list, open, search, filter or
autocomplete a student (or a unit) outside its scope, and phones/IDs are masked."""

import pytest
from django.urls import reverse

from campuses.models import Assignment, Role
from tests.world import STAFF_PERSONAS, other

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:students_student_changelist"


def login(client, user):
    client.force_login(user)
    return client


def student_numbers_in(html: str, students) -> set[str]:
    return {s.student_number for s in students if s.student_number in html}


@pytest.mark.parametrize("key", ["A", "B"])
@pytest.mark.parametrize("persona", sorted(STAFF_PERSONAS))
def test_changelist_shows_own_students_and_no_outsider(client, world, persona, key):
    ns, outside = world[key], world[other(key)]
    login(client, getattr(ns, persona))
    html = client.get(reverse(CHANGELIST)).content.decode()
    expected = ns.students if STAFF_PERSONAS[persona] == "all" else ns.students[:3]
    assert student_numbers_in(html, ns.students) == {s.student_number for s in expected}
    assert student_numbers_in(html, outside.students) == set()
    assert outside.college.name not in html  # not even as a filter choice


@pytest.mark.parametrize("persona", sorted(STAFF_PERSONAS))
def test_cannot_open_outsider_change_form(client, world, persona):
    login(client, getattr(world["A"], persona))
    foreign = world["B"].student
    response = client.get(reverse("admin:students_student_change", args=[foreign.pk]))
    assert response.status_code == 302  # the admin's "does not exist" redirect
    assert foreign.name not in client.get(response.url).content.decode()
    own = world["A"].student
    assert client.get(reverse("admin:students_student_change", args=[own.pk])).status_code == 200


@pytest.mark.parametrize("persona", sorted(STAFF_PERSONAS))
def test_search_does_not_reach_outsiders(client, world, persona):
    login(client, getattr(world["A"], persona))
    foreign = world["B"].student
    for term in (foreign.student_number, foreign.name):
        result = client.get(reverse(CHANGELIST), {"q": term}).context["cl"].result_list
        assert list(result) == []
    own = world["A"].student
    assert list(client.get(reverse(CHANGELIST), {"q": own.student_number}).context["cl"].result_list) == [own]


def autocomplete(client, model_name: str, field_name: str, term: str = ""):
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "students", "model_name": model_name, "field_name": field_name, "term": term},
    )
    assert response.status_code == 200, response.content
    return {row["text"] for row in response.json()["results"]}


@pytest.mark.parametrize("persona", ["coordinator", "college_admin", "counsellor"])
def test_autocomplete_offers_only_scoped_students_and_rooms(client, world, persona):
    login(client, getattr(world["A"], persona))
    students = autocomplete(client, "keyattentiontag", "student")
    assert students == {str(s) for s in world["A"].students}
    assert not autocomplete(client, "keyattentiontag", "student", world["B"].student.name)
    rooms = autocomplete(client, "student", "room")
    assert rooms == {str(r) for r in world["A"].rooms}
    classes = autocomplete(client, "student", "school_class")
    assert classes == {str(k) for k in world["A"].classes}


def test_filter_on_foreign_college_shows_nothing(client, world):
    login(client, world["A"].coordinator)
    html = client.get(reverse(CHANGELIST), {"college__id__exact": world["B"].college.pk}).content.decode()
    assert student_numbers_in(html, world["B"].students) == set()


def test_phones_and_ids_masked_by_role_in_the_list(client, world):
    student = world["A"].student
    login(client, world["A"].coordinator)
    html = client.get(reverse(CHANGELIST)).content.decode()
    assert student.phone not in html and f"{student.phone[:3]}****{student.phone[-4:]}" in html
    assert student.id_number not in html
    login(client, world["A"].counsellor)
    html = client.get(reverse(CHANGELIST)).content.decode()
    assert student.phone in html and student.id_number not in html
    login(client, world["A"].college_admin)
    html = client.get(reverse(CHANGELIST)).content.decode()
    assert student.phone in html and student.id_number in html


def test_change_form_masks_for_roles_without_need(client, world):
    student = world["A"].student
    login(client, world["A"].counsellor)
    html = client.get(reverse("admin:students_student_change", args=[student.pk])).content.decode()
    assert student.phone in html  # counsellors call students
    assert student.id_number not in html and "1101**********" in html


def test_history_closed_to_roles_that_see_masked_values(client, world):
    student = world["A"].student
    url = reverse("admin:students_student_history", args=[student.pk])
    login(client, world["A"].coordinator)
    assert client.get(url).status_code == 403
    login(client, world["A"].college_admin)
    assert client.get(url).status_code == 200


def test_class_monitor_and_logistics_cannot_edit(client, world):
    student = world["A"].student
    url = reverse("admin:students_student_change", args=[student.pk])
    for user in (world["A"].monitor, world["A"].logistics, world["A"].coordinator):
        login(client, user)
        response = client.post(url, {"name": "改名"})
        assert response.status_code == 403
    student.refresh_from_db()
    assert student.name != "改名"


def test_counsellor_edit_is_saved_with_history(client, world):
    student = world["A"].student
    old_name = student.name
    login(client, world["A"].counsellor)
    url = reverse("admin:students_student_change", args=[student.pk])
    data = {
        "student_number": student.student_number,
        "name": "新名字",
        "gender": student.gender,
        "enrolment_status": student.enrolment_status,
        "school_class": student.school_class_id,
        "room": student.room_id,
        "bed": student.bed,
        "phone": student.phone,
        "guardian_name": "",
        "hometown_province": "",
        "hometown_city": "",
        "whereabouts": "home",
        "tags-TOTAL_FORMS": "0",
        "tags-INITIAL_FORMS": "0",
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    student.refresh_from_db()
    assert (student.name, student.whereabouts) == ("新名字", "home")
    assert student.id_number.startswith("110101")  # untouched although hidden from the form
    latest, previous = student.history.all()[:2]
    assert (latest.name, previous.name) == ("新名字", old_name)
    assert latest.history_user == world["A"].counsellor


def test_counsellor_cannot_move_student_into_foreign_class(client, world):
    student = world["A"].student
    login(client, world["A"].counsellor)
    url = reverse("admin:students_student_change", args=[student.pk])
    response = client.post(
        url,
        {
            "student_number": student.student_number,
            "name": student.name,
            "gender": student.gender,
            "enrolment_status": student.enrolment_status,
            "school_class": world["B"].classes[0].pk,
            "whereabouts": "on_campus",
            "tags-TOTAL_FORMS": "0",
            "tags-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200  # the form comes back with an error
    student.refresh_from_db()
    assert student.school_class_id == world["A"].classes[0].pk


def test_student_login_cannot_use_the_admin(client, world):
    login(client, world["A"].student_user)
    assert client.get(reverse(CHANGELIST)).status_code == 302


def test_unit_changelists_are_scoped(client, world):
    login(client, world["A"].college_admin)
    html = client.get(reverse("admin:campuses_schoolclass_changelist")).content.decode()
    assert all(k.name in html for k in world["A"].classes)
    assert not any(k.name in html for k in world["B"].classes)
    html = client.get(reverse("admin:campuses_assignment_changelist")).content.decode()
    assert "counsellor_A" in html and "counsellor_B" not in html


def test_university_admin_manages_accounts_but_not_superusers(client, world, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="x")
    login(client, world.uni_admin)
    html = client.get(reverse("admin:auth_user_changelist")).content.decode()
    assert "coord_A" in html and ">root<" not in html
    assert client.get(reverse("admin:auth_user_change", args=[root.pk])).status_code == 302
    login(client, world["A"].college_admin)
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403


def test_university_admin_grants_duties_others_cannot(client, world):
    login(client, world["A"].college_admin)
    assert client.get(reverse("admin:campuses_assignment_add")).status_code == 403
    login(client, world.uni_admin)
    assert client.get(reverse("admin:campuses_assignment_add")).status_code == 200
    assert Assignment.objects.filter(role=Role.UNIVERSITY_ADMIN).count() == 1


def test_foreign_key_choices_are_scoped(client, world):
    login(client, world["A"].logistics)
    response = client.get(reverse("admin:campuses_building_add"))
    assert response.status_code == 200
    choices = {str(c) for c in response.context["adminform"].form.fields["campus"].queryset}
    assert choices == {world["A"].campus.name}


def test_list_filter_choices_are_scoped(client, world):
    login(client, world["A"].coordinator)
    cl = client.get(reverse(CHANGELIST)).context["cl"]
    shown = {str(choice["display"]) for spec in cl.filter_specs for choice in spec.choices(cl)}
    # (a filter with a single choice is hidden by the admin; the nullable building one shows)
    assert world["A"].building.name in shown
    assert not {world["B"].campus.name, world["B"].college.name, world["B"].building.name} & shown
