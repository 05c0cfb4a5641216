"""Cluster alerts (聚集性预警): the threshold, the window, never twice for one cluster
(also under concurrent detection on PostgreSQL), new cases joining the open alert,
a fresh alert only from cases after a close, scoped acknowledge/close with history,
the recipients and content of the notifications, and the admin pages."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campuses.models import Assignment, College, Grade, Role, SchoolClass
from notifications.models import Notification
from reports import alerts
from reports.alert_models import AlertState, ClusterAlert, ClusterAlertStudent, ClusterLevel
from reports.alerts import (
    alerts_open,
    cluster_alert_acknowledge,
    cluster_alert_close,
    cluster_alert_recipients,
    cluster_detect,
)
from reports.tasks import cluster_detect_task
from students.models import Gender, Student
from tests.reports.checkin import local, make_slots, submit
from tests.world import build_world

pytestmark = pytest.mark.django_db

TODAY = dt.datetime.now(tz=dt.UTC).date()
D0 = TODAY - dt.timedelta(days=3)  # a quiet past day: every instant below is in the past


def at(hour: int, minute: int = 0, *, day: dt.date = D0) -> dt.datetime:
    return local(hour, minute, day=day)


def fever(student, *, when: dt.datetime, slot: str = "morning"):
    return submit(student, when=when, slot=slot, temperature="38.2")


def only_levels(settings, *levels: str, **extra) -> None:
    settings.TONGXIN = {**settings.TONGXIN, "CLUSTER_LEVELS": list(levels), **extra}


def alerts_of(level: str) -> list[ClusterAlert]:
    return list(ClusterAlert.objects.filter(level=level).order_by("id"))


def member_ids(alert: ClusterAlert) -> set[int]:
    return set(alert.members.values_list("student_id", flat=True))


@pytest.fixture
def slots(world):
    return make_slots(world)


@pytest.fixture
def room_cluster(world, slots):
    """Three students of campus A's room 1 (also class 1, building 1) with fever on D0."""
    a = world["A"]
    for minute, student in enumerate(a.students[:3]):
        fever(student, when=at(8, minute))
    return a


# -- the threshold -------------------------------------------------------------
def test_two_abnormal_students_raise_no_alert(world, slots):
    a = world["A"]
    fever(a.students[0], when=at(8))
    fever(a.students[1], when=at(8, 5))

    result = cluster_detect(now=at(9))

    assert result.raised == []
    assert not ClusterAlert.objects.exists()


def test_three_abnormal_students_raise_an_alert_for_room_building_and_class(room_cluster):
    a = room_cluster

    result = cluster_detect(now=at(9))

    assert {(x.level, x.unit_id) for x in result.raised} == {
        (ClusterLevel.ROOM, a.rooms[0].pk),
        (ClusterLevel.BUILDING, a.building.pk),
        (ClusterLevel.SCHOOL_CLASS, a.classes[0].pk),
    }
    for alert in result.raised:
        assert alert.state == AlertState.OPEN
        assert alert.case_count == 3
        assert member_ids(alert) == {s.pk for s in a.students[:3]}
        assert alert.campus_id == a.campus.pk
        assert alert.college_id == a.college.pk
        assert alert.window_start == at(8, 0)
        assert alert.window_end == at(8, 2)
    room = alerts_of(ClusterLevel.ROOM)[0]
    assert room.unit_name == f"{a.building.name} {a.rooms[0].number}"


def test_one_student_reporting_twice_counts_once(world, slots):
    a = world["A"]
    fever(a.students[0], when=at(8))
    fever(a.students[0], when=at(12), slot="noon")
    fever(a.students[1], when=at(8, 5))

    assert cluster_detect(now=at(13)).raised == []


def test_healthy_reports_do_not_count(world, slots):
    a = world["A"]
    fever(a.students[0], when=at(8))
    fever(a.students[1], when=at(8, 1))
    submit(a.students[2], when=at(8, 2))  # 36.5, healthy

    assert cluster_detect(now=at(9)).raised == []


def test_threshold_and_levels_come_from_settings(world, slots, settings):
    a = world["A"]
    only_levels(settings, "school_class", CLUSTER_MIN_CASES={"school_class": 2})
    fever(a.students[0], when=at(8))
    fever(a.students[1], when=at(8, 1))

    result = cluster_detect(now=at(9))

    assert [(x.level, x.case_count, x.min_cases) for x in result.raised] == [("school_class", 2, 2)]


# -- the window ------------------------------------------------------------------
def test_cases_spread_beyond_the_window_raise_no_alert(world, slots):
    a = world["A"]
    fever(a.students[0], when=at(8, day=D0 - dt.timedelta(days=2)))
    fever(a.students[1], when=at(8, day=D0 - dt.timedelta(days=1)))
    fever(a.students[2], when=at(8, 30))

    # 48 h before D0 09:00 is D0-2 09:00: the first case is out of the window.
    assert cluster_detect(now=at(9)).raised == []


def test_cases_within_the_window_across_days_raise_an_alert(world, slots):
    a = world["A"]
    fever(a.students[0], when=at(9, 30, day=D0 - dt.timedelta(days=2)))
    fever(a.students[1], when=at(8, day=D0 - dt.timedelta(days=1)))
    fever(a.students[2], when=at(8, 30))

    raised = cluster_detect(now=at(9)).raised

    assert {x.level for x in raised} == {"room", "building", "school_class"}


def test_reports_after_now_are_not_counted(world, slots):
    a = world["A"]
    fever(a.students[0], when=at(8))
    fever(a.students[1], when=at(8, 1))
    fever(a.students[2], when=at(9, 30))

    assert cluster_detect(now=at(9)).raised == []


# -- never twice -------------------------------------------------------------------
def test_detecting_twice_raises_nothing_new(room_cluster):
    first = cluster_detect(now=at(9))
    notifications = Notification.objects.count()

    second = cluster_detect(now=at(9, 10))

    assert len(first.raised) == 3
    assert second.raised == [] and second.grown == []
    assert second.seen == 3
    assert ClusterAlert.objects.count() == 3
    assert Notification.objects.count() == notifications
    assert set(ClusterAlert.objects.values_list("last_seen", flat=True)) == {at(9, 10)}


def test_the_database_refuses_a_second_active_alert_for_a_unit(room_cluster):
    from django.db import IntegrityError, transaction

    cluster_detect(now=at(9))
    existing = alerts_of(ClusterLevel.ROOM)[0]

    with pytest.raises(IntegrityError), transaction.atomic():
        ClusterAlert.objects.create(
            level=existing.level,
            unit_id=existing.unit_id,
            unit_name="x",
            campus_id=existing.campus_id,
            min_cases=3,
            window_hours=48,
            window_start=existing.window_start,
            window_end=existing.window_end,
            first_seen=existing.first_seen,
            last_seen=existing.last_seen,
        )


def test_new_abnormal_student_joins_the_open_alert(room_cluster):
    a = room_cluster
    cluster_detect(now=at(9))
    building = alerts_of(ClusterLevel.BUILDING)[0]
    history_before = building.history.count()
    # Class 2, room 2 — but the same building.
    fever(a.students[3], when=at(8, 0, day=D0 + dt.timedelta(days=1)))

    result = cluster_detect(now=at(9, day=D0 + dt.timedelta(days=1)))

    assert result.raised == []
    assert [x.pk for x in result.grown] == [building.pk]
    building.refresh_from_db()
    assert building.case_count == 4
    assert member_ids(building) == {s.pk for s in a.students[:4]}
    assert building.window_end == at(8, 0, day=D0 + dt.timedelta(days=1))
    assert alerts_of(ClusterLevel.BUILDING) == [building]
    latest = building.history.first()
    assert building.history.count() == history_before + 1
    assert "1" in latest.history_change_reason
    # The room and class alerts did not grow (the student is elsewhere).
    assert {x.case_count for x in alerts_of(ClusterLevel.ROOM) + alerts_of(ClusterLevel.SCHOOL_CLASS)} == {3}


def test_new_student_joins_an_acknowledged_alert_and_it_stays_acknowledged(room_cluster):
    a = room_cluster
    cluster_detect(now=at(9))
    building = alerts_of(ClusterLevel.BUILDING)[0]
    cluster_alert_acknowledge(actor=a.coordinator, alert_id=building.pk)
    fever(a.students[4], when=at(9, 30))

    cluster_detect(now=at(9, 40))

    building.refresh_from_db()
    assert (building.state, building.case_count) == (AlertState.ACKNOWLEDGED, 4)


def test_after_close_a_new_alert_needs_new_cases(room_cluster, settings):
    a = room_cluster
    only_levels(settings, "school_class")
    cluster_detect(now=at(9))
    first = alerts_of(ClusterLevel.SCHOOL_CLASS)[0]
    cluster_alert_close(actor=a.coordinator, alert_id=first.pk, note="已安排隔离观察", now=at(9, 30))

    # The same cases, still in the window, do not raise the closed cluster again.
    assert cluster_detect(now=at(10)).raised == []
    # One new case after the close is not a cluster on its own.
    day1 = D0 + dt.timedelta(days=1)
    fever(a.students[0], when=at(8, 0, day=day1))
    assert cluster_detect(now=at(8, 10, day=day1)).raised == []
    # Enough new cases after the close are a new cluster: a second, separate alert.
    fever(a.students[1], when=at(8, 20, day=day1))
    fever(a.students[2], when=at(8, 30, day=day1))
    raised = cluster_detect(now=at(9, 0, day=day1)).raised

    assert [x.level for x in raised] == ["school_class"]
    assert raised[0].pk != first.pk
    assert raised[0].window_start == at(8, 0, day=day1)
    first.refresh_from_db()
    assert first.state == AlertState.CLOSED


def test_detection_reads_a_fixed_number_of_queries_whatever_the_number_of_cases(world, slots):
    a = world["A"]
    klass = a.classes[1]
    for n in range(12):
        Student.objects.create(student_number=f"7A{n:05d}", name=f"加{n}", gender=Gender.MALE, school_class=klass)
    quiet = list(Student.objects.filter(school_class=klass).order_by("pk"))

    def queries_for(students, minute0) -> int:
        for i, s in enumerate(students):
            fever(s, when=at(6, minute0 + i))
        with CaptureQueriesContext(connection) as ctx:
            cluster_detect(now=at(9, 59))
        ClusterAlert.objects.all().delete()
        return len(ctx)

    small = queries_for(quiet[:3], 0)
    large = queries_for(quiet[3:15], 10)

    assert small == large


def test_beat_task_runs_the_detection(room_cluster):
    assert cluster_detect_task(now=at(9).isoformat()) == 3
    assert cluster_detect_task(now=at(9, 10).isoformat()) == 0


# -- concurrency --------------------------------------------------------------------
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: SQLite serialises writers, so two detections cannot race; "
    "run with DATABASE_URL=postgres://...",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_detections_raise_one_alert(monkeypatch):
    world = build_world()
    make_slots(world)
    a = world["A"]
    for minute, student in enumerate(a.students[:3]):
        fever(student, when=at(8, minute))

    # Both detections find the cluster before either inserts: the barrier makes the race certain.
    barrier = threading.Barrier(2, timeout=10)
    original = alerts._candidates

    def racing_candidates(level, *args, **kwargs):
        found = original(level, *args, **kwargs)
        if level == ClusterLevel.ROOM:
            barrier.wait()
        return found

    monkeypatch.setattr(alerts, "_candidates", racing_candidates)
    results, errors = [], []

    def detect():
        try:
            results.append(cluster_detect(now=at(9)))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=detect) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sum(len(r.raised) for r in results) == 3
    assert ClusterAlert.objects.count() == 3
    for alert in ClusterAlert.objects.all():
        assert member_ids(alert) == {s.pk for s in a.students[:3]}
    # Each recipient was told once per alert.
    assert Notification.objects.filter(dedupe_key__endswith=":raised").count() == 3 * 2


# -- acknowledge and close ------------------------------------------------------------
def test_coordinator_acknowledges_then_closes_with_a_note_kept_in_history(room_cluster):
    a = room_cluster
    cluster_detect(now=at(9))
    alert = alerts_of(ClusterLevel.ROOM)[0]

    cluster_alert_acknowledge(actor=a.coordinator, alert_id=alert.pk, now=at(9, 5))
    cluster_alert_acknowledge(actor=a.coordinator, alert_id=alert.pk, now=at(9, 6))  # a double click
    closed = cluster_alert_close(actor=a.college_admin, alert_id=alert.pk, note="  已消杀并隔离观察  ", now=at(10))

    assert (closed.state, closed.close_note, closed.closed_by, closed.closed_at) == (
        AlertState.CLOSED,
        "已消杀并隔离观察",
        a.college_admin,
        at(10),
    )
    assert (closed.acknowledged_by, closed.acknowledged_at) == (a.coordinator, at(9, 5))
    states = list(alert.history.order_by("history_date").values_list("state", "history_user_id"))
    assert states == [("open", None), ("acknowledged", a.coordinator.pk), ("closed", a.college_admin.pk)]


def test_close_requires_a_note(room_cluster):
    a = room_cluster
    cluster_detect(now=at(9))
    alert = alerts_of(ClusterLevel.ROOM)[0]

    with pytest.raises(alerts.ValidationError) as exc:
        cluster_alert_close(actor=a.coordinator, alert_id=alert.pk, note="   ")

    assert exc.value.error_dict["close_note"][0].code == "note_required"
    alert.refresh_from_db()
    assert alert.state == AlertState.OPEN


def test_a_closed_alert_cannot_be_closed_or_acknowledged_again(room_cluster):
    a = room_cluster
    cluster_detect(now=at(9))
    alert = alerts_of(ClusterLevel.ROOM)[0]
    cluster_alert_close(actor=a.coordinator, alert_id=alert.pk, note="处理完毕")

    for call in (
        lambda: cluster_alert_close(actor=a.coordinator, alert_id=alert.pk, note="再次"),
        lambda: cluster_alert_acknowledge(actor=a.coordinator, alert_id=alert.pk),
    ):
        with pytest.raises(alerts.ValidationError) as exc:
            call()
        assert exc.value.error_dict["state"][0].code == "closed"


@pytest.mark.parametrize("persona", ["coordinator", "college_admin", "counsellor", "monitor", "logistics", "psych"])
def test_foreign_staff_cannot_acknowledge_or_close(room_cluster, world, persona):
    cluster_detect(now=at(9))
    alert = alerts_of(ClusterLevel.ROOM)[0]
    outsider = getattr(world["B"], persona)

    for call in (
        lambda: cluster_alert_acknowledge(actor=outsider, alert_id=alert.pk),
        lambda: cluster_alert_close(actor=outsider, alert_id=alert.pk, note="越权"),
    ):
        with pytest.raises(alerts.ValidationError) as exc:
            call()
        assert exc.value.error_dict["alert"][0].code == "does_not_exist"
    alert.refresh_from_db()
    assert alert.state == AlertState.OPEN


@pytest.mark.parametrize("persona", ["monitor", "logistics", "psych"])
def test_roles_that_do_not_handle_alerts_cannot_act_on_their_own_campus(room_cluster, persona):
    a = room_cluster
    cluster_detect(now=at(9))
    alert = alerts_of(ClusterLevel.ROOM)[0]

    with pytest.raises(alerts.ValidationError):
        cluster_alert_acknowledge(actor=getattr(a, persona), alert_id=alert.pk)


def test_alerts_open_lists_what_each_persona_sees(room_cluster, world):
    a, b = room_cluster, world["B"]
    cluster_detect(now=at(9))
    everyone = set(ClusterAlert.objects.values_list("pk", flat=True))

    def seen(user) -> set[int]:
        return set(alerts_open(user=user).values_list("pk", flat=True))

    for user in (a.coordinator, a.college_admin, a.counsellor, world.uni_admin):
        assert seen(user) == everyone
    for user in (b.coordinator, b.college_admin, b.counsellor, a.monitor, a.logistics, a.psych, a.student_user):
        assert seen(user) == set()
    closed = alerts_of(ClusterLevel.ROOM)[0]
    cluster_alert_close(actor=a.coordinator, alert_id=closed.pk, note="已处理")
    assert seen(a.coordinator) == everyone - {closed.pk}


def test_alerts_open_is_one_query(room_cluster):
    a = room_cluster
    cluster_detect(now=at(9))
    a.coordinator._tongxin_scope = None

    with CaptureQueriesContext(connection) as ctx:
        rows = [(x.campus.name, x.college.name if x.college else "") for x in alerts_open(user=a.coordinator)]

    assert len(rows) == 3
    assert len(ctx) <= 3  # the scope (assignments, own student record) and the list


# -- notifications ---------------------------------------------------------------
def test_notifications_go_to_the_campus_coordinator_and_college_admin_only(room_cluster):
    a = room_cluster

    cluster_detect(now=at(9))

    alert = alerts_of(ClusterLevel.ROOM)[0]
    sent = Notification.objects.filter(dedupe_key=f"cluster:{alert.pk}:raised")
    assert set(sent.values_list("recipient_id", flat=True)) == {a.coordinator.pk, a.college_admin.pk}
    assert Notification.objects.filter(kind="alert").count() == 3 * 2


def test_notification_carries_counts_and_a_link_but_no_names(room_cluster):
    a = room_cluster

    cluster_detect(now=at(9))

    alert = alerts_of(ClusterLevel.ROOM)[0]
    note = Notification.objects.filter(dedupe_key=f"cluster:{alert.pk}:raised").first()
    assert "3" in note.title and "48" in note.title
    assert note.link == reverse("admin:reports_clusteralert_change", args=[alert.pk])
    text = note.title + note.body
    for student in a.students:
        assert student.name not in text
        assert student.student_number not in text
        assert student.phone not in text
    assert "38" not in text  # no temperature, no health detail


def test_growth_is_announced_once_per_new_count(room_cluster):
    a = room_cluster
    cluster_detect(now=at(9))
    building = alerts_of(ClusterLevel.BUILDING)[0]
    fever(a.students[3], when=at(9, 20))

    cluster_detect(now=at(9, 30))
    cluster_detect(now=at(9, 40))

    grown = Notification.objects.filter(dedupe_key=f"cluster:{building.pk}:n4")
    assert set(grown.values_list("recipient_id", flat=True)) == {a.coordinator.pk, a.college_admin.pk}


def test_building_alert_tells_the_admins_of_every_college_involved(world, slots):
    a = world["A"]
    law2 = College.objects.create(campus=a.campus, code="A02", name="经济学院(中心校区)")
    grade2 = Grade.objects.create(college=law2, year=2024, name="2024级")
    class2 = SchoolClass.objects.create(grade=grade2, code="E1", name="经济2024-1班")
    neighbour = Student.objects.create(
        student_number="0A2499999",
        name="邻居",
        gender=Gender.MALE,
        school_class=class2,
        room=a.rooms[1],
        bed="4",
    )
    admin2 = get_user_model().objects.create(username="college_A2", is_staff=True)
    Assignment.objects.create(user=admin2, role=Role.COLLEGE_ADMIN, college=law2)
    # An expired coordinator duty and another campus's coordinator are not told.
    for student, minute in ((a.students[0], 0), (a.students[3], 1), (neighbour, 2)):
        fever(student, when=at(8, minute))

    raised = cluster_detect(now=at(9)).raised

    [building] = [x for x in raised if x.level == ClusterLevel.BUILDING]
    assert building.college_id is None  # two colleges
    assert set(cluster_alert_recipients(building)) == {a.coordinator.pk, a.college_admin.pk, admin2.pk}
    # Each college admin sees only their own students of the alert.
    assert set(alerts.alert_members(user=admin2, alert_id=building.pk).values_list("student_id", flat=True)) == {
        neighbour.pk
    }


def test_recipients_with_an_expired_duty_are_not_told(room_cluster):
    a = room_cluster
    Assignment.objects.filter(user=a.college_admin).update(
        valid_from=D0 - dt.timedelta(days=30), valid_to=D0 - dt.timedelta(days=10)
    )
    a.college_admin._tongxin_scope = None

    cluster_detect(now=at(9))

    alert = alerts_of(ClusterLevel.ROOM)[0]
    assert cluster_alert_recipients(alert) == [a.coordinator.pk]


# -- admin -------------------------------------------------------------------------
CHANGELIST = "admin:reports_clusteralert_changelist"


def test_admin_list_is_scoped(room_cluster, world, client):
    a, b = room_cluster, world["B"]
    cluster_detect(now=at(9))

    client.force_login(a.coordinator)
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert response.context["cl"].result_count == 3

    client.force_login(b.coordinator)
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert response.context["cl"].result_count == 0

    client.force_login(a.monitor)
    assert client.get(reverse(CHANGELIST)).status_code == 403


def test_admin_change_page_lists_the_students_without_phone_or_id(room_cluster, client):
    a = room_cluster
    cluster_detect(now=at(9))
    alert = alerts_of(ClusterLevel.ROOM)[0]
    client.force_login(a.coordinator)

    response = client.get(reverse("admin:reports_clusteralert_change", args=[alert.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    for student in a.students[:3]:
        assert student.name in page
        assert student.phone not in page
        assert student.id_number not in page
    assert 'value="close_alerts"' in page


def test_admin_acknowledge_action(room_cluster, client):
    a = room_cluster
    cluster_detect(now=at(9))
    alert = alerts_of(ClusterLevel.ROOM)[0]
    client.force_login(a.counsellor)

    response = client.post(
        reverse(CHANGELIST), {"action": "acknowledge_alerts", "_selected_action": [alert.pk], "index": 0}
    )

    assert response.status_code == 302
    alert.refresh_from_db()
    assert (alert.state, alert.acknowledged_by) == (AlertState.ACKNOWLEDGED, a.counsellor)


def test_admin_close_action_asks_for_a_note_first(room_cluster, client):
    a = room_cluster
    cluster_detect(now=at(9))
    alert = alerts_of(ClusterLevel.ROOM)[0]
    client.force_login(a.coordinator)
    url = reverse(CHANGELIST)

    page = client.post(url, {"action": "close_alerts", "_selected_action": [alert.pk], "index": 0})
    assert page.status_code == 200
    assert 'name="note"' in page.content.decode()
    empty = client.post(url, {"action": "close_alerts", "_selected_action": [alert.pk], "apply": "1", "note": ""})
    assert empty.status_code == 200
    alert.refresh_from_db()
    assert alert.state == AlertState.OPEN

    done = client.post(
        url, {"action": "close_alerts", "_selected_action": [alert.pk], "apply": "1", "note": "已完成排查"}
    )

    assert done.status_code == 302
    alert.refresh_from_db()
    assert (alert.state, alert.close_note, alert.closed_by) == (AlertState.CLOSED, "已完成排查", a.coordinator)


def test_admin_cannot_add_edit_or_delete_alerts(room_cluster, client):
    a = room_cluster
    cluster_detect(now=at(9))
    alert = alerts_of(ClusterLevel.ROOM)[0]
    client.force_login(a.coordinator)

    assert client.get(reverse("admin:reports_clusteralert_add")).status_code == 403
    assert client.post(reverse("admin:reports_clusteralert_delete", args=[alert.pk])).status_code == 403
    client.post(reverse("admin:reports_clusteralert_change", args=[alert.pk]), {"state": "closed"})
    alert.refresh_from_db()
    assert alert.state == AlertState.OPEN
    assert ClusterAlertStudent.objects.filter(alert=alert).count() == 3
