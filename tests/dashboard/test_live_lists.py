"""A campus's and the university's live lists are rendered once a minute for every
viewer who sees the same students the same way (reports.live_lists): shared between
equal viewers only, never older than the figures above them, each viewer's own CSRF
token in the forms, the actor's next view computed afresh, English for an English
viewer, and rendered for every view when the cache is down.  Colleges, grades and
classes are never cached."""

from __future__ import annotations

import re
import time

import pytest
from django.test import Client

from campuses.models import Assignment, Role
from reports.live_lists import CSRF_MARKER, FRESH_SESSION_KEY, mark_fresh
from students.models import ContactLog
from tests.dashboard.scenario import as_ints, card_figures
from tests.dashboard.test_views import page, unit_url
from tests.reports.checkin import local, submit
from tests.reports.test_redis_outage import private_redis  # noqa: F401 (a fixture)
from tests.world import _user

pytestmark = pytest.mark.django_db


@pytest.fixture
def cached(settings):
    settings.TONGXIN = {**settings.TONGXIN, "DASHBOARD_LIVE_SECONDS": 60}


def missing_ids(text: str) -> set[int]:
    section = text.split('id="missing"')[1].split("</section>")[0]
    return {int(pk) for pk in re.findall(r'<tr data-student="(\d+)"', section)}


def missing_total(text: str) -> int:
    return int(re.search(r'id="missing">\s*<h2>[^<]*?(\d+)[^<\d]*</h2>', text).group(1))


def twin(user, username: str):
    """A second account with exactly ``user``'s assignments."""
    other = _user(username)
    for assignment in Assignment.objects.filter(user=user):
        assignment.pk = None
        assignment.user = other
        assignment.save()
    return other


def chaser(world, username: str):
    """A logistics officer of campus A who also counsels class 1: sees the campus page,
    and chases the missing students of that class from it."""
    a = world["A"]
    user = _user(username)
    Assignment.objects.create(user=user, role=Role.LOGISTICS_OFFICER, campus=a.campus)
    Assignment.objects.create(user=user, role=Role.COUNSELLOR, school_class=a.classes[1])
    return user


def test_equal_viewers_share_the_lists_of_the_cached_figures(client, world, day, cached, time_machine):
    a = world["A"]
    second = twin(a.coordinator, "coord_A2")
    first = page(client, a.coordinator)
    assert a.students[2].pk in missing_ids(first)

    submit(a.students[2], when=local(9, 30))
    shared = page(Client(), second)  # never viewed the page before

    # The second coordinator gets the first's rendering: the student who has just
    # reported is still listed, and the list's count is still the figure above it.
    assert missing_ids(shared) == missing_ids(first)
    assert missing_total(shared) == as_ints(card_figures(shared, "morning"))["missing"] == 2
    # The grade's page (a counsellor's, never cached) is live.
    grade = page(Client(), a.counsellor, unit_url(f"grade:{a.grade.pk}"))
    assert a.students[2].pk not in missing_ids(grade)

    time_machine.move_to(local(9, 31, 1), tick=False)
    from django.core.cache import cache

    cache.clear()  # Redis expires keys on its own clock, not the test's: stand in for the expiry
    later = page(Client(), second)
    assert a.students[2].pk not in missing_ids(later)
    assert missing_total(later) == as_ints(card_figures(later, "morning"))["missing"] == 1


def test_a_viewer_with_other_grants_never_gets_anothers_lists(client, world, day, cached):
    """The university admin sees phones in full, a campus coordinator masked, a
    logistics officer no lists at all: each renders their own, whoever came first."""
    a = world["A"]
    campus = unit_url(f"campus:{a.campus.pk}")
    missing = [s for s in a.students if s.pk in {a.students[2].pk, a.students[5].pk}]

    admin = page(client, world.uni_admin, campus)
    assert all(s.phone in admin for s in missing)

    coordinator = page(Client(), a.coordinator, campus)
    assert missing_ids(coordinator) == missing_ids(admin)
    assert not any(s.phone in coordinator for s in missing)
    assert all(f"{s.phone[:3]}****{s.phone[-4:]}" in coordinator for s in missing)

    logistics = page(Client(), a.logistics, campus)
    assert 'id="missing"' not in logistics and 'id="abnormal"' not in logistics
    assert a.students[2].name not in logistics


def test_kept_forms_carry_each_viewers_own_csrf_token(world, day, cached):
    a = world["A"]
    first, second = chaser(world, "chaser_1"), chaser(world, "chaser_2")
    campus = unit_url(f"campus:{a.campus.pk}")
    page(Client(), first, campus)  # renders and keeps the lists

    browser = Client(enforce_csrf_checks=True)
    text = page(browser, second, campus)
    assert CSRF_MARKER not in text
    student = next(iter(missing_ids(text) & {s.pk for s in a.students if s.school_class_id == a.classes[1].pk}))
    form = re.search(rf'<form action="/dashboard/actions/contacted/".*?value="{student}"', text, re.S).group(0)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)

    response = browser.post(
        "/dashboard/actions/contacted/", {"csrfmiddlewaretoken": token, "student": student, "next": campus}
    )

    assert response.status_code == 302
    assert ContactLog.objects.get(student_id=student).contacted_by == second


def test_the_actor_sees_their_action_on_the_page_they_are_sent_back_to(client, world, day, cached):
    a = world["A"]
    user = chaser(world, "chaser_1")
    campus = unit_url(f"campus:{a.campus.pk}")
    before = page(client, user, campus)
    # The page's figures are the campus's; the list, this user's class: student 5.
    student = next(s for s in a.students if s.pk in missing_ids(before) and s.school_class_id == a.classes[1].pk)
    assert as_ints(card_figures(before, "morning"))["missing"] == 2
    others = page(Client(), twin(user, "chaser_2"), campus)  # an equal viewer, from the same rendering
    assert student.pk in missing_ids(others)

    response = client.post(
        "/dashboard/actions/proxy/",
        {"student": student.pk, "slot": "morning", "health_status": "healthy", "whereabouts": "on_campus",
         "temperature": "36.6", "next": campus},
        follow=True,
    )  # fmt: skip

    assert "已代报" in response.text
    assert student.pk not in missing_ids(response.text)
    assert as_ints(card_figures(response.text, "morning"))["missing"] == 1  # the figures computed afresh too
    # Once: the view after is served from the cache again (now the fresh rendering).
    again = page(client, user, campus)
    assert missing_ids(again) == missing_ids(response.text)


def test_the_actors_mark_is_their_sessions_and_lapses_with_the_minute(client, world, day, cached):
    a = world["A"]
    campus = unit_url(f"campus:{a.campus.pk}")
    assert missing_ids(page(client, a.coordinator, campus)) == {a.students[2].pk, a.students[5].pk}  # kept
    submit(a.students[2], when=local(9, 30))

    session = client.session
    session[FRESH_SESSION_KEY] = time.time() - 1  # marked over a minute ago
    session.save()
    assert a.students[2].pk in missing_ids(page(client, a.coordinator, campus))  # still the kept rendering
    assert FRESH_SESSION_KEY not in client.session  # the lapsed mark is gone

    elsewhere = Client()  # the same user in another browser: no mark there
    elsewhere.force_login(a.coordinator)
    session = client.session
    mark_fresh(session)
    session.save()
    assert a.students[2].pk in missing_ids(page(elsewhere, a.coordinator, campus))
    assert missing_ids(page(client, a.coordinator, campus)) == {a.students[5].pk}  # the marked browser: afresh


def test_an_english_viewer_gets_english_lists(client, world, day, cached):
    a = world["A"]
    assert "未报名单" in page(client, a.coordinator)  # kept, in Chinese

    text = page(Client(), a.coordinator, "/dashboard/", **{"Accept-Language": "en"})

    assert "Not reported (Morning check, 2)" in text
    assert "未报名单" not in text


def test_a_cache_outage_renders_the_lists_for_every_view(world, day, private_redis, settings):  # noqa: F811
    settings.TONGXIN = {**settings.TONGXIN, "DASHBOARD_LIVE_SECONDS": 60}
    a = world["A"]
    assert missing_ids(page(Client(), a.coordinator)) == {a.students[2].pk, a.students[5].pk}

    private_redis.stop()
    submit(a.students[2], when=local(9, 30))
    text = page(Client(), a.coordinator)

    assert missing_ids(text) == {a.students[5].pk}
    assert as_ints(card_figures(text, "morning"))["missing"] == 1
