"""The check-in admin: scoped lists, filter choices and forms; the missing list with
its "mark as contacted" action; reports read-only; excusals and contacts through the
services."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse

from reports.models import DailyReport, Excusal
from students.models import ContactLog
from tests.reports.checkin import counsellors_and_contacts, local, submit, today


@pytest.fixture
def reports(world, slots):
    return {key: submit(world[key].students[1], temperature="38.0").report for key in ("A", "B")}


def _login(client, user):
    client.force_login(user)
    return client


def test_report_list_is_scoped_and_its_unit_filters_offer_only_my_units(client, world, reports):
    _login(client, world["A"].college_admin)
    page = client.get(reverse("admin:reports_dailyreport_changelist"))
    assert page.status_code == 200
    html = page.content.decode()
    assert world["A"].students[1].name in html
    assert world["B"].students[1].name not in html
    # Filter choices: my classes, never another campus's units.
    assert all(klass.name in html for klass in world["A"].classes)
    for unit in (world["B"].campus, world["B"].college, *world["B"].classes):
        assert unit.name not in html

    foreign = client.get(reverse("admin:reports_dailyreport_change", args=[reports["B"].pk]))
    assert foreign.status_code == 302  # "does not exist" → back to the index, as Django does


def test_reports_are_read_only_in_the_admin(client, world, reports):
    _login(client, world["A"].counsellor)
    assert client.get(reverse("admin:reports_dailyreport_add")).status_code == 403
    change = client.get(reverse("admin:reports_dailyreport_change", args=[reports["A"].pk]))
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    assert client.post(reverse("admin:reports_dailyreport_delete", args=[reports["A"].pk])).status_code == 403


def test_monitor_and_logistics_have_no_report_pages(client, world, reports):
    for user in (world["A"].monitor, world["A"].logistics):
        _login(client, user)
        assert client.get(reverse("admin:reports_dailyreport_changelist")).status_code == 403


def test_missing_list_page_and_mark_contacted_action(client, world, reports, time_machine):
    time_machine.move_to(local(9, 30), tick=False)
    a = world["A"]
    _login(client, a.counsellor)
    url = reverse("admin:reports_missingstudent_changelist")
    page = client.get(url, {"date": today().isoformat(), "slot": "morning"})
    assert page.status_code == 200
    html = page.content.decode()
    missing = [s for i, s in enumerate(a.students) if i != 1]
    assert all(s.student_number in html for s in missing)
    assert a.students[1].student_number not in html  # reported
    assert world["B"].students[0].student_number not in html

    chosen = [missing[0].pk, missing[1].pk]
    response = client.post(
        url + f"?date={today().isoformat()}&slot=morning",
        {"action": "mark_contacted", "_selected_action": chosen},
    )
    assert response.status_code == 302
    entries = ContactLog.objects.filter(student_id__in=chosen)
    assert entries.count() == 2
    assert {e.contacted_by for e in entries} == {a.counsellor}


def test_missing_list_page_names_each_rows_counsellor_and_last_contact(client, world, slots):
    expected = counsellors_and_contacts(world)
    _login(client, world["A"].counsellor)
    page = client.get(reverse("admin:reports_missingstudent_changelist"), {"slot": "morning"})
    assert page.status_code == 200
    rows = {}
    for row in re.findall(r"<tr>.*?</tr>", page.text, re.S):
        cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
        if len(cells) > 2 and cells[1] in expected:
            rows[cells[1]] = cells
    assert rows.keys() == expected.keys()
    outcomes = {"reached": "已联系上", "not_reached": "未联系上"}
    for number, want in expected.items():
        contact = "-"
        if want.contacted_at is not None:
            contact = f"{want.contacted_at:%m-%d %H:%M} {outcomes[want.outcome]}"
        assert rows[number][-2:] == [want.counsellor, contact], number


def test_monitor_sees_names_only_on_the_missing_list_and_cannot_mark(client, world, reports):
    a = world["A"]
    _login(client, a.monitor)
    page = client.get(reverse("admin:reports_missingstudent_changelist"))
    assert page.status_code == 200
    html = page.content.decode()
    assert a.students[0].student_number in html
    assert a.students[0].phone not in html and "负责辅导员" not in html
    assert a.students[3].student_number not in html  # not the monitor's class
    assert "mark_contacted" not in html


def test_excusal_added_in_the_admin_records_who_and_refuses_foreign_students(client, world, slots):
    a = world["A"]
    _login(client, a.counsellor)
    url = reverse("admin:reports_excusal_add")
    data = {"reason": "in_hospital", "note": "", "starts_on": today().isoformat(), "ends_on": ""}

    foreign = client.post(url, {**data, "student": world["B"].students[2].pk})
    assert foreign.status_code == 200 and not Excusal.objects.exists()  # the form refuses the choice

    ok = client.post(url, {**data, "student": a.students[2].pk})
    assert ok.status_code == 302
    excusal = Excusal.objects.get()
    assert (excusal.student, excusal.created_by) == (a.students[2], a.counsellor)

    other = client.post(url, {**data, "student": a.students[3].pk, "reason": "other"})
    assert other.status_code == 200  # "other" needs a note
    assert Excusal.objects.count() == 1


def test_contact_log_admin_adds_through_the_service(client, world, slots, time_machine):
    time_machine.move_to(local(9, 0), tick=False)
    a = world["A"]
    _login(client, a.college_admin)
    response = client.post(
        reverse("admin:students_contactlog_add"),
        {
            "student": a.students[4].pk,
            "contacted_at_0": today().isoformat(),
            "contacted_at_1": "08:15:00",
            "channel": "phone",
            "outcome": "not_reached",
            "note": "关机",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = ContactLog.objects.get()
    assert (entry.contacted_by, entry.outcome, entry.contacted_at) == (a.college_admin, "not_reached", local(8, 15))

    future = client.post(
        reverse("admin:students_contactlog_add"),
        {"student": a.students[4].pk, "contacted_at_0": today().isoformat(), "contacted_at_1": "11:00:00"},
    )
    assert future.status_code == 200 and "联系时间不能晚于现在" in future.content.decode()


def test_slots_are_set_by_the_coordinator_for_their_campus(client, world, slots):
    a = world["A"]
    _login(client, a.coordinator)
    page = client.get(reverse("admin:reports_checkinslot_add"))
    assert page.status_code == 200
    assert a.campus.name in page.content.decode() and world["B"].campus.name not in page.content.decode()

    _login(client, a.counsellor)
    assert client.get(reverse("admin:reports_checkinslot_add")).status_code == 403
    listed = client.get(reverse("admin:reports_checkinslot_changelist")).content.decode()
    assert a.campus.name in listed and world["B"].campus.name not in listed


def test_close_follow_ups_action(client, world, reports):
    _login(client, world["A"].counsellor)
    response = client.post(
        reverse("admin:reports_dailyreport_changelist"),
        {"action": "close_follow_ups", "_selected_action": [reports["A"].pk]},
    )
    assert response.status_code == 302
    assert DailyReport.objects.get(pk=reports["A"].pk).follow_up == "closed"
    assert DailyReport.objects.get(pk=reports["B"].pk).follow_up == "open"


def _listed(client, query: str = "") -> list[int]:
    page = client.get(reverse("admin:reports_dailyreport_changelist") + query)
    assert page.status_code == 200, page
    return [r.pk for r in page.context["cl"].result_list]


def _chosen_day(client, query: str = "") -> list[str]:
    """The day filter's choices shown as selected."""
    cl = client.get(reverse("admin:reports_dailyreport_changelist") + query).context["cl"]
    days = next(f for f in cl.filter_specs if getattr(f, "parameter_name", "") == "day")
    return [str(c["display"]) for c in days.choices(cl) if c["selected"]]


def test_report_list_shows_today_unless_another_day_is_chosen(client, world, slots):
    """At 100,000 students 90 days are 11.7 million reports: the list is of one day —
    today by default, a day of the past week or every day on request, every day when
    searching — so its page is read in index order, never counted or sorted whole."""
    a = world["A"]
    yesterday = today() - dt.timedelta(days=1)
    old = submit(a.students[0], when=local(8, 0, day=yesterday)).report
    new = submit(a.students[1]).report
    _login(client, a.college_admin)
    assert _listed(client) == [new.pk]
    assert _listed(client, f"?day={yesterday.isoformat()}") == [old.pk]
    assert _listed(client, "?day=all") == [new.pk, old.pk]
    assert _listed(client, f"?q={a.students[0].student_number}") == [old.pk]  # a search: every day
    assert _listed(client, f"?q={a.students[0].student_number}&day={today().isoformat()}") == []
    assert _chosen_day(client) == ["今天"]
    assert _chosen_day(client, f"?day={yesterday.isoformat()}") == ["昨天"]
    assert _chosen_day(client, "?day=all") == _chosen_day(client, "?q=0") == ["全部日期"]
    bad = client.get(reverse("admin:reports_dailyreport_changelist") + "?day=2026-13-45")
    assert bad.status_code == 302 and bad.url.endswith("?e=1")  # Django's "wrong filter" page


def test_report_list_order_is_the_day_index_order(client, world, slots):
    """Latest day first, then slot, class and student: the (date, slot, class) index's
    order, total without the id (the unique student-date-slot), so PostgreSQL reads a
    page of a day without sorting the day."""
    a = world["A"]
    ordered = sorted(
        (submit(s).report for s in reversed(a.students)),
        key=lambda r: (r.slot_id, r.school_class_id, r.student_id),
    )
    _login(client, a.college_admin)
    page = client.get(reverse("admin:reports_dailyreport_changelist") + "?day=all")
    cl = page.context["cl"]
    assert [r.pk for r in cl.result_list] == [r.pk for r in ordered]
    order_by = str(cl.queryset.query).split(" ORDER BY ")[1].split(" LIMIT ")[0]
    table = DailyReport._meta.db_table
    columns = [f'"{table}"."{c}"' for c in ("date", "slot_id", "school_class_id", "student_id")]
    assert order_by == ", ".join((f"{columns[0]} DESC", *(f"{c} ASC" for c in columns[1:])))  # no id appended


def test_missing_list_counts_who_has_not_reported_once(client, world, slots):
    """Counting who has not reported is an anti-join over every student in scope
    (245 ms for a university of 100,000): the page makes it once, not again for
    Django's "of N in all"."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _login(client, world["A"].college_admin)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("admin:reports_missingstudent_changelist"), {"slot": "morning"})
    assert page.status_code == 200 and page.context["cl"].result_count == len(world["A"].students)
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"] and "students_student" in q["sql"]]
    assert len(counts) == 1, counts
