"""The dashboard pages per role: what each persona sees, that the figures equal the
database (counted independently, student by student), that past days come from the
snapshots, and the actions (contacted, proxy report, follow-up, sign-off)."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campuses.models import Assignment, Role
from reports.models import CheckinSlot, DailyReport, HealthStatus, ReportSource
from reports.rollup import rollup_compile_day
from reports.rollup_models import SignOff, SignOffState
from reports.services import ReportAnswer, report_submit_proxy
from students.models import ContactLog, EnrolmentStatus
from tests.dashboard.scenario import as_ints, card_figures, expected_figures, row_figures
from tests.reports.checkin import counsellors_and_contacts, local, submit

pytestmark = pytest.mark.django_db

FIGURES = ("expected", "reported", "missing", "excused", "abnormal")


def page(client, user, url: str = "/dashboard/", **headers):
    client.force_login(user)
    response = client.get(url, headers=headers)
    assert response.status_code == 200, (url, response.status_code)
    return response.text


def unit_url(unit: str, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"unit": unit, **params}.items())
    return f"/dashboard/?{query}"


# ---------------------------------------------------------------------------
# Access
# ---------------------------------------------------------------------------
def test_anonymous_is_sent_to_the_login(client):
    response = client.get("/dashboard/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/dashboard/")


def test_student_account_is_refused(client, world):
    client.force_login(world["A"].student_user)

    assert client.get("/dashboard/").status_code == 403
    assert client.get("/dashboard/today/").status_code == 403
    assert client.get(f"/dashboard/students/{world['A'].student.pk}/").status_code == 403


def test_staff_without_duties_sees_no_units(client, world):
    text = page(client, world.nobody)

    assert "没有可显示的院系单位" in text
    assert "data-figure" not in text


# ---------------------------------------------------------------------------
# What each role sees
# ---------------------------------------------------------------------------
def test_a_slots_state_is_its_campuses_own(client, world, day):
    """At 09:30 campus B's morning check has closed (at 09:15) and campus A's has not
    (10:00): each campus's card says its own, the university's says open while one is."""
    b = world["B"]
    CheckinSlot.objects.filter(campus=b.campus, code="morning").update(closes_at="09:15")

    def state(text: str) -> str:
        card = re.search(r'data-slot-card="morning">\s*<h2>[^<]*<span class="badge[^"]*">([^<]+)</span>', text)
        return card.group(1)

    assert state(page(client, b.coordinator)) == "已关闭"
    assert state(page(client, world["A"].coordinator)) == "进行中"
    assert state(page(client, world.uni_admin)) == "进行中"


def test_coordinator_sees_campus_figures_equal_to_the_database(client, world, day):
    a = world["A"]

    text = page(client, a.coordinator)

    assert f'data-unit="campus:{a.campus.pk}"' in text
    for slot in ("morning", "noon"):
        want = expected_figures(on=day.today, slot_code=slot, campus=a.campus)
        assert {k: v for k, v in as_ints(card_figures(text, slot)).items() if k in FIGURES} == want
    # Today at 09:30 in campus A: 0, 1 (fever) and 3 reported, 4 excused, 2 and 5 missing.
    assert as_ints(card_figures(text, "morning")) == {
        "expected": 5,
        "reported": 3,
        "missing": 2,
        "excused": 1,
        "abnormal": 1,
    }
    college = row_figures(text, f"college:{a.college.pk}")
    assert as_ints(college) == {
        **expected_figures(on=day.today, slot_code="morning", college=a.college),
        "late": 0,
        "proxy": 0,
    }
    assert college["completion"].endswith("60.0%")
    assert world["B"].campus.name not in text


def test_coordinator_drills_down_to_the_students_of_a_class(client, world, day):
    a = world["A"]
    client.force_login(a.coordinator)
    text = client.get("/dashboard/").text

    for level, unit in (("college", a.college), ("grade", a.grade), ("school_class", a.classes[0])):
        link = re.search(rf'href="([^"]+)" data-unit-link="{level}:{unit.pk}"', text)
        assert link, f"no drill-down link to {level}"
        response = client.get(link.group(1).replace("&amp;", "&"))
        assert response.status_code == 200
        text = response.text
        assert f'<h1 data-unit="{level}:{unit.pk}">' in text

    # The class page lists its students with today's status, each linking to 一生一档.
    for student in a.students[:3]:
        assert f'href="/dashboard/students/{student.pk}/"' in text
    assert re.search(rf'data-student="{a.students[2].pk}">.*?data-status="missing"', text, re.S)
    assert re.search(rf'data-student="{a.students[0].pk}">.*?data-status="reported"', text, re.S)
    klass = as_ints(card_figures(text, "morning"))
    assert klass == expected_figures(on=day.today, slot_code="morning", school_class=a.classes[0])
    student_page = client.get(f"/dashboard/students/{a.students[1].pk}/")
    assert student_page.status_code == 200
    assert a.students[1].name in student_page.text


def test_counsellor_sees_only_their_grade(client, world, day):
    a, b = world["A"], world["B"]
    client.force_login(a.counsellor)

    text = client.get("/dashboard/").text

    assert f'<h1 data-unit="grade:{a.grade.pk}">' in text
    assert as_ints(card_figures(text, "morning")) == expected_figures(on=day.today, slot_code="morning", grade=a.grade)
    # Above the grade, and anything of the other campus: not found.
    for unit in (f"campus:{a.campus.pk}", f"college:{a.college.pk}", f"university:{world.university.pk}"):
        assert client.get(unit_url(unit)).status_code == 404
    for unit in (f"campus:{b.campus.pk}", f"grade:{b.grade.pk}", f"school_class:{b.classes[0].pk}"):
        assert client.get(unit_url(unit)).status_code == 404
    assert client.get(f"/dashboard/students/{b.students[0].pk}/").status_code == 404
    # The breadcrumb names the campus and the college without linking to them.
    assert f'data-unit-link="campus:{a.campus.pk}"' not in text


def test_user_with_two_grades_switches_between_them(client, world, day):
    a, b = world["A"], world["B"]
    Assignment.objects.create(user=a.counsellor, role=Role.COUNSELLOR, grade=b.grade)
    client.force_login(a.counsellor)

    text = client.get("/dashboard/").text
    switcher = text[text.index('class="switcher"') :]
    switcher = switcher[: switcher.index("</nav>")]

    assert f"unit=grade%3A{a.grade.pk}" in switcher and f"unit=grade%3A{b.grade.pk}" in switcher
    other = client.get(unit_url(f"grade:{b.grade.pk}"))
    assert other.status_code == 200
    assert as_ints(card_figures(other.text, "morning")) == expected_figures(
        on=day.today, slot_code="morning", grade=b.grade
    )
    assert client.get(unit_url(f"campus:{b.campus.pk}")).status_code == 404


def test_expired_duty_roster_sees_no_units(client, world, day):
    text = page(client, world["A"].expired_duty)

    assert "没有可显示的院系单位" in text
    assert client.get(unit_url(f"college:{world['A'].college.pk}")).status_code == 404


def test_foreign_or_malformed_unit_is_not_found(client, world, day):
    client.force_login(world["A"].coordinator)

    assert client.get(unit_url(f"campus:{world['B'].campus.pk}")).status_code == 404
    assert client.get(unit_url(f"university:{world.university.pk}")).status_code == 404
    assert client.get(unit_url("campus:999999")).status_code == 404
    assert client.get(unit_url("building:1")).status_code == 404
    assert client.get(unit_url("campus:x")).status_code == 404
    assert client.get(f"/dashboard/students/{world['B'].student.pk}/").status_code == 404


def test_university_admin_sees_both_campuses(client, world, day):
    text = page(client, world.uni_admin)

    assert f'<h1 data-unit="university:{world.university.pk}">' in text
    for key in ("A", "B"):
        campus = world[key].campus
        assert (
            as_ints(row_figures(text, f"campus:{campus.pk}"))["reported"]
            == (expected_figures(on=day.today, slot_code="morning", campus=campus)["reported"])
        )


def _section(text: str, name: str) -> str:
    """A panel of the page (its <section id=...>), up to its end."""
    start = text.index(f'<section class="panel" id="{name}">')
    return text[start : text.index("</section>", start)]


def _roster(text: str) -> dict[int, tuple[str, bool, str | None]]:
    """The class page's roster: per student id, the status, whether the row is marked
    abnormal and the temperature cell (None where the page has no such column)."""
    table = text[text.index('data-table="roster"') : text.index("</table>", text.index('data-table="roster"'))]
    rows = {}
    for attrs, body in re.findall(r"<tr data-student=\"(\d+\"[^>]*)>(.*?)</tr>", table, re.S):
        pk = int(attrs.split('"')[0])
        status = re.search(r'data-status="(\w*)"', body).group(1)
        cells = re.findall(r'<td class="num">([^<]*)</td>', body)
        rows[pk] = (status, 'class="is-alert"' in attrs, cells[0].strip() if cells else None)
    return rows


def test_class_roster_states_add_up_to_the_figures(client, world, day):
    """The class page's roster (one hand-written statement, reports.dashboard): each
    student's state for the slot — reported, missing, excused, or none when not
    enrolled — with the abnormal mark and the temperature for a health role only, the
    students of the viewer's scope only, and the states counting to the card's figures."""
    a = world["A"]
    a.students[2].enrolment_status = EnrolmentStatus.SUSPENDED
    a.students[2].save()
    first, second = (unit_url(f"school_class:{k.pk}", slot="morning") for k in a.classes)
    s = a.students

    counsellor = page(client, a.counsellor, first)
    assert _roster(counsellor) == {
        s[0].pk: ("reported", False, "36.5"),
        s[1].pk: ("reported", True, "38.1"),
        s[2].pk: ("", False, "—"),  # suspended: not expected
    }
    assert "非在读" in counsellor
    text = page(client, a.counsellor, second)
    roster = _roster(text)
    assert roster == {
        s[3].pk: ("reported", False, "36.5"),
        s[4].pk: ("excused", False, "—"),
        s[5].pk: ("missing", False, "—"),
    }
    figures = as_ints(card_figures(text, "morning"))
    for state in ("reported", "missing", "excused"):
        assert figures[state] == sum(r[0] == state for r in roster.values()), state

    monitor = page(client, a.monitor, first)  # names only: no mark, no temperature column
    assert _roster(monitor) == {
        s[0].pk: ("reported", False, None),
        s[1].pk: ("reported", False, None),
        s[2].pk: ("", False, None),
    }
    assert "38.1" not in monitor

    yesterday = page(client, a.counsellor, unit_url(f"school_class:{a.classes[0].pk}", date=day.yesterday.isoformat()))
    assert 'data-status="' not in yesterday[yesterday.index('data-table="roster"') :]  # a past day: no states


def test_before_a_slot_opens_nobody_is_missing_yet(client, world, day, at_930):
    """At 09:30 campus A's noon slot (11:30–14:30) has not opened: the class page marks
    its students pending (待报), not missing, lists no one to chase and does not flag
    the card's count; the open morning slot beside it still does.  Once the noon slot
    opens, the same students are missing and listed."""
    a = world["A"]
    s = a.students
    second = unit_url(f"school_class:{a.classes[1].pk}", slot="noon")

    text = page(client, a.counsellor, second)
    assert _roster(text) == {
        s[3].pk: ("pending", False, "—"),
        s[4].pk: ("excused", False, "—"),
        s[5].pk: ("pending", False, "—"),
    }
    assert '<span class="badge">待报</span>' in text and '<span class="badge warn">未报</span>' not in text
    missing = _section(text, "missing")
    assert 'data-missing="not-started"' in missing and "午检尚未开始报送" in missing
    assert "<tr" not in missing and 'data-action="contacted"' not in text
    assert '<dd data-figure="missing" class="">2</dd>' in text.split('data-slot-card="noon"')[1].split("</a>")[0]
    assert 'class="warn">1</dd>' in text.split('data-slot-card="morning"')[1].split("</a>")[0]

    college = page(client, a.college_admin, unit_url(f"college:{a.college.pk}", slot="noon"))
    assert 'data-missing="not-started"' in _section(college, "missing")
    english = page(client, a.counsellor, second, **{"Accept-Language": "en"})
    assert "has not opened yet" in _section(english, "missing") and ">Pending</span>" in english

    at_930.move_to(local(11, 31), tick=False)
    opened = page(client, a.counsellor, second)
    assert _roster(opened)[s[5].pk] == ("missing", False, "—")
    listed = set(re.findall(r'<tr data-student="(\d+)"', _section(opened, "missing")))
    assert listed == {str(s[3].pk), str(s[5].pk)}


def test_class_monitor_sees_names_but_no_health(client, world, day):
    a = world["A"]

    text = page(client, a.monitor)

    assert f'<h1 data-unit="school_class:{a.classes[0].pk}">' in text
    assert a.students[2].name in text  # missing, by name
    assert 'data-figure="abnormal"' not in text
    assert "38.1" not in text
    assert "体温异常" not in text
    assert "重点人员" not in text
    assert 'data-action="contacted"' not in text
    assert 'data-action="proxy"' not in text
    assert client.get(unit_url(f"school_class:{a.classes[1].pk}")).status_code == 404

    student = page(client, a.monitor, f"/dashboard/students/{a.students[1].pk}/")
    assert "38.1" not in student
    assert "发热" not in student
    assert "138****0002" in student  # phone masked
    assert "1101**********0002" in student  # ID masked


def test_coordinator_does_not_get_the_chase_buttons(client, world, day):
    text = page(client, world["A"].coordinator)

    assert world["A"].students[2].name in text  # on the missing list
    assert 'data-action="contacted"' not in text
    assert 'data-action="proxy"' not in text


def test_counsellor_gets_the_chase_buttons_and_full_phone(client, world, day):
    a = world["A"]

    text = page(client, a.counsellor)

    assert 'data-action="contacted"' in text
    assert 'data-action="proxy"' in text
    # The 代报 form carries its inputs (rendered once per page, only where the user chases).
    assert 'name="temperature"' in text and 'name="health_status"' in text
    assert a.students[2].phone in text  # counsellors call students: full number


def test_student_page_masks_by_role(client, world, day):
    a = world["A"]
    student = a.students[1]
    url = f"/dashboard/students/{student.pk}/"

    coordinator = page(client, a.coordinator, url)
    counsellor = page(client, a.counsellor, url)
    college = page(client, a.college_admin, url)

    assert "138****0002" in coordinator and student.phone not in coordinator
    assert student.phone in counsellor and "1101**********0002" in counsellor
    assert student.phone in college and student.id_number in college
    # Health details for health roles: the fever, the tag, in time order.
    assert "38.1" in counsellor and "发热观察" in counsellor
    times = re.findall(r'<time datetime="([^"]+)"', counsellor)
    assert times == sorted(times, reverse=True) and len(times) >= 3


def test_student_page_timeline_has_contacts_and_excusals(client, world, day):
    a = world["A"]
    ContactLog.objects.create(
        student=a.students[4], contacted_at=local(9, 0), outcome=ContactLog.Outcome.REACHED, note="住院中"
    )

    text = page(client, a.counsellor, f"/dashboard/students/{a.students[4].pk}/")

    assert 'data-kind="contact"' in text and "住院中" in text
    assert 'data-kind="excusal"' in text and "住院" in text


# ---------------------------------------------------------------------------
# Past days: snapshots only
# ---------------------------------------------------------------------------
def test_past_day_shows_the_snapshot_and_ignores_later_changes(client, world, day):
    a = world["A"]
    url = unit_url(f"campus:{a.campus.pk}", date=day.yesterday.isoformat(), slot="morning")
    before = page(client, a.coordinator, url)
    assert as_ints(card_figures(before, "morning")) == expected_figures(
        on=day.yesterday, slot_code="morning", campus=a.campus
    )

    # A late proxy report for yesterday changes the raw rows, not the compiled snapshot.
    report_submit_proxy(
        actor=a.counsellor,
        student_id=a.students[5].pk,
        slot_code="morning",
        answer=ReportAnswer.clean(temperature="36.6"),
        on=day.yesterday,
    )
    after = page(client, a.coordinator, url)

    assert card_figures(after, "morning") == card_figures(before, "morning")
    assert row_figures(after, f"college:{a.college.pk}") == row_figures(before, f"college:{a.college.pk}")
    assert expected_figures(on=day.yesterday, slot_code="morning", campus=a.campus)["reported"] == 6
    # The next compilation brings it in.
    rollup_compile_day(on=day.yesterday)
    recompiled = page(client, a.coordinator, url)
    assert as_ints(card_figures(recompiled, "morning"))["reported"] == 6


def test_today_follows_the_raw_reports(client, world, day):
    a = world["A"]
    before = as_ints(card_figures(page(client, a.coordinator), "morning"))

    submit(a.students[2], when=local(9, 20))
    after = as_ints(card_figures(page(client, a.coordinator), "morning"))

    assert after["reported"] == before["reported"] + 1
    assert after["missing"] == before["missing"] - 1


def test_campus_figures_are_cached_briefly_and_grades_never(client, world, day, settings, time_machine):
    a = world["A"]
    settings.TONGXIN = {**settings.TONGXIN, "DASHBOARD_LIVE_SECONDS": 60}
    campus = page(client, a.coordinator)
    grade_url = unit_url(f"grade:{a.grade.pk}")
    assert "截至 09:30:00" in campus

    submit(a.students[2], when=local(9, 30))

    # Within the minute the campus figures are the cached ones; the grade is live.
    assert card_figures(page(client, a.coordinator), "morning") == card_figures(campus, "morning")
    assert as_ints(card_figures(page(client, a.coordinator, grade_url), "morning"))["missing"] == 1
    time_machine.move_to(local(9, 31, 1), tick=False)
    cache.clear()  # Redis expires keys on its own clock, not the test's: stand in for the expiry
    fresh = page(client, a.coordinator)
    assert as_ints(card_figures(fresh, "morning"))["missing"] == 1
    assert "截至 09:31:01" in fresh


def _missing_total(text: str) -> int:
    return int(re.search(r'id="missing">\s*<h2>未报名单（[^，]+，(\d+) 人）', text).group(1))


def test_missing_list_total_is_the_live_figure_where_the_user_sees_the_whole_unit(client, world, day):
    """A coordinator sees the whole campus: the list's total is the live roll-up's
    missing figure and no count runs over the campus's students."""
    a = world["A"]
    with CaptureQueriesContext(connection) as captured:
        text = page(client, a.coordinator)
    assert _missing_total(text) == as_ints(card_figures(text, "morning"))["missing"] == 2
    student_counts = [
        q["sql"] for q in captured.captured_queries if 'COUNT(*) AS "__count" FROM "students_student"' in q["sql"]
    ]
    assert student_counts == []


def test_missing_list_total_is_counted_where_the_user_sees_part_of_the_unit(client, world, day):
    """A logistics officer of campus A who counsels one class sees the campus page (as
    logistics) but the missing list of that class only (the health role): counted."""
    a = world["A"]
    Assignment.objects.create(user=a.logistics, role=Role.COUNSELLOR, school_class=a.classes[1])
    text = page(client, a.logistics)
    listed = set(re.findall(r'<tr data-student="(\d+)"', text.split('id="missing"')[1].split("</section>")[0]))
    in_class = {str(s.pk) for s in a.students if s.school_class_id == a.classes[1].pk}
    assert listed and listed <= in_class
    assert _missing_total(text) == len(listed) < as_ints(card_figures(text, "morning"))["missing"]


def test_missing_list_names_each_rows_counsellor_and_last_contact(client, world, day):
    a = world["A"]
    expected = counsellors_and_contacts(world)
    numbers = {str(s.pk): s.student_number for s in a.students}
    text = page(client, a.counsellor).split('data-list="missing"')[1].split("</table>")[0]
    rows = {
        numbers[pk]: [
            re.sub(r"<[^>]+>|\s+", " ", cell).split() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for pk, row in re.findall(r'<tr data-student="(\d+)">(.*?)</tr>', text, re.S)
    }
    # The day leaves two of campus A missing, both contacted (one by nobody recorded).
    assert rows.keys() == {a.students[2].student_number, a.students[5].student_number}
    outcomes = {"reached": "已联系上", "not_reached": "未联系上"}
    for number, cells in rows.items():
        want = expected[number]
        contact = ["—"]
        if want.contacted_at is not None:
            contact = [f"{want.contacted_at:%m-%d}", f"{want.contacted_at:%H:%M}", outcomes[want.outcome]]
            contact += ["·", want.by] if want.by else []
        assert cells[4:6] == [[want.counsellor], contact], number


def test_past_day_never_reads_the_report_table(client, world, day):
    a = world["A"]
    client.force_login(a.coordinator)
    for url in (
        unit_url(f"campus:{a.campus.pk}", date=day.yesterday.isoformat()),
        unit_url(f"school_class:{a.classes[0].pk}", date=day.yesterday.isoformat()),
    ):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        sql = " ".join(q["sql"] for q in queries.captured_queries)
        assert DailyReport._meta.db_table not in sql
        assert "reports_rollupsnapshot" in sql


def test_past_day_without_snapshots_says_so(client, world, day):
    text = page(client, world["A"].coordinator, "/dashboard/?date=2020-01-01")

    assert "该日没有汇总数据" in text


def test_future_date_is_today(client, world, day):
    future = (day.today + dt.timedelta(days=3)).isoformat()

    text = page(client, world["A"].coordinator, f"/dashboard/?date={future}")

    assert "今日数据实时计算" in text


def test_trend_chart_data_has_thirty_days(client, world, day):
    text = page(client, world["A"].coordinator)

    data = re.search(r'<script id="trend-data" type="application/json">(.*?)</script>', text, re.S).group(1)
    trend = json.loads(data)
    assert len(trend["dates"]) == 30
    yesterday = expected_figures(on=day.yesterday, slot_code="morning", campus=world["A"].campus)
    assert trend["completion"][-2] == round(100 * yesterday["reported"] / yesterday["expected"], 1)
    assert trend["completion"][-1] == 60.0
    assert trend["abnormal"][-1] == 1


def test_signoff_grid_shows_confirmed_units(client, world, day):
    a = world["A"]
    SignOff.objects.create(date=day.yesterday, level="college", unit_id=a.college.pk, state=SignOffState.CONFIRMED)

    text = page(client, a.coordinator)

    row = text[text.index(f'<tr data-unit="college:{a.college.pk}"><th scope="row">{a.college.name}</th>') :]
    row = row[: row.index("</tr>")]
    assert row.count('data-state="confirmed"') == 1
    assert row.count('data-state="pending"') == 6


def test_signoff_grid_shows_the_units_own_row_and_only_its_days(client, world, day):
    """The page's own unit has a row of its own; a state two days ago lands in its
    column; another campus's sign-off and one older than the grid's 7 days show nowhere."""
    a, b = world["A"], world["B"]
    two_days_ago = day.yesterday - dt.timedelta(days=1)
    SignOff.objects.create(date=day.yesterday, level="campus", unit_id=a.campus.pk, state=SignOffState.CONFIRMED)
    SignOff.objects.create(
        date=two_days_ago, level="college", unit_id=a.college.pk, state=SignOffState.REOPENED, reopen_reason="数字有误"
    )
    SignOff.objects.create(date=day.yesterday, level="college", unit_id=b.college.pk, state=SignOffState.CONFIRMED)
    SignOff.objects.create(
        date=day.today - dt.timedelta(days=7),
        level="campus",
        unit_id=a.campus.pk,
        state=SignOffState.REOPENED,
        reopen_reason="数字有误",
    )

    text = page(client, a.coordinator)
    grid = text[text.index('data-table="signoffs"') :]
    grid = grid[: grid.index("</table>")]

    def cells(unit_key: str) -> list[tuple[str, str]]:
        row = grid[grid.index(f'<tr data-unit="{unit_key}">') :]
        row = row[: row.index("</tr>")]
        return re.findall(r'data-state="(\w+)" title="([\d-]+)"', row)

    own = cells(f"campus:{a.campus.pk}")
    assert len(own) == 7 and own[-1] == ("pending", day.today.isoformat())
    assert [state for state, _day in own].count("confirmed") == 1
    assert ("confirmed", day.yesterday.isoformat()) in own
    assert "reopened" not in [state for state, _day in own]  # seven days ago: before the grid
    college = cells(f"college:{a.college.pk}")
    assert ("reopened", two_days_ago.isoformat()) in college
    assert [state for state, _day in college].count("pending") == 6
    assert f'data-unit="college:{b.college.pk}"' not in grid


def test_key_attention_groups_are_counted(client, world, day):
    text = page(client, world["A"].coordinator)

    assert re.search(r'data-tag="fever">\s*发热 <b>1</b>', text)


# ---------------------------------------------------------------------------
# English
# ---------------------------------------------------------------------------
def test_language_switch_turns_the_page_english(client, world, day):
    client.force_login(world["A"].coordinator)
    assert "数据看板" in client.get("/dashboard/").text

    response = client.post("/i18n/setlang/", {"language": "en", "next": "/dashboard/"})
    assert response.status_code == 302
    text = client.get("/dashboard/").text

    assert "Dashboard" in text
    assert "Morning" in text
    assert "Expected" in text
    assert "数据看板" not in text
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"


# ---------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------
def test_counsellor_marks_a_student_contacted(client, world, day):
    a = world["A"]
    client.force_login(a.counsellor)

    response = client.post(
        "/dashboard/actions/contacted/", {"student": a.students[2].pk, "next": "/dashboard/today/"}, follow=True
    )

    assert response.redirect_chain[-1][0] == "/dashboard/today/"
    entry = ContactLog.objects.get(student=a.students[2])
    assert entry.contacted_by == a.counsellor and entry.outcome == ContactLog.Outcome.REACHED
    assert "已登记联系记录" in response.text
    # The missing list now shows the last contact.
    assert re.search(rf'data-student="{a.students[2].pk}">.*?counsellor_A.*?已联系上', response.text, re.S)


def test_coordinator_cannot_post_contacted(client, world, day):
    a = world["A"]
    client.force_login(a.coordinator)

    response = client.post("/dashboard/actions/contacted/", {"student": a.students[2].pk}, follow=True)

    assert not ContactLog.objects.exists()
    assert "不在您的管理范围内" in response.text


def test_counsellor_cannot_contact_another_campus(client, world, day):
    client.force_login(world["A"].counsellor)

    client.post("/dashboard/actions/contacted/", {"student": world["B"].students[2].pk})

    assert not ContactLog.objects.exists()


def test_counsellor_proxy_reports(client, world, day):
    a = world["A"]
    client.force_login(a.counsellor)

    response = client.post(
        "/dashboard/actions/proxy/",
        {
            "student": a.students[5].pk,
            "slot": "morning",
            "date": day.today.isoformat(),
            "temperature": "36.7",
            "health_status": "healthy",
            "whereabouts": "on_campus",
            "note": "电话确认",
            "next": "/dashboard/",
        },
        follow=True,
    )

    report = DailyReport.objects.get(student=a.students[5], date=day.today, slot__code="morning")
    assert report.source == ReportSource.PROXY and report.submitted_by == a.counsellor
    assert ContactLog.objects.get(student=a.students[5]).outcome == ContactLog.Outcome.PROXY_REPORTED
    assert "已代报" in response.text
    assert as_ints(card_figures(response.text, "morning"))["missing"] == 1


def test_proxy_report_refuses_bad_input_and_foreign_students(client, world, day):
    a = world["A"]
    client.force_login(a.counsellor)
    base = {"slot": "morning", "health_status": "healthy", "whereabouts": "on_campus"}

    bad = client.post(
        "/dashboard/actions/proxy/", {**base, "student": a.students[5].pk, "temperature": "45"}, follow=True
    )
    home = client.post(
        "/dashboard/actions/proxy/", {**base, "student": a.students[5].pk, "whereabouts": "home"}, follow=True
    )
    client.post("/dashboard/actions/proxy/", {**base, "student": world["B"].students[3].pk})
    client.force_login(a.monitor)
    client.post("/dashboard/actions/proxy/", {**base, "student": a.students[2].pk})

    assert not DailyReport.objects.filter(source=ReportSource.PROXY).exists()
    assert "msg-error" in bad.text
    assert "不在校时请填写所在省份" in home.text


def test_counsellor_closes_a_follow_up(client, world, day):
    a = world["A"]
    report = DailyReport.objects.get(student=a.students[1], date=day.today)
    client.force_login(a.counsellor)

    client.post("/dashboard/actions/follow-up/", {"report": report.pk, "note": "已回电"})

    report.refresh_from_db()
    assert report.follow_up == "closed"
    assert ContactLog.objects.get(student=a.students[1]).note == "已回电"


def test_unsafe_next_falls_back_to_the_morning_page(client, world, day):
    client.force_login(world["A"].counsellor)

    response = client.post(
        "/dashboard/actions/contacted/", {"student": world["A"].students[2].pk, "next": "https://evil.example/"}
    )

    assert response["Location"] == "/dashboard/today/"


def test_actions_refuse_get(client, world):
    client.force_login(world["A"].counsellor)

    assert client.get("/dashboard/actions/contacted/").status_code == 405


# ---------------------------------------------------------------------------
# The morning page
# ---------------------------------------------------------------------------
def test_morning_page_lists_the_work_in_order(client, world, day):
    a = world["A"]

    text = page(client, a.counsellor, "/dashboard/today/")

    sections = [text.index(f'id="{name}"') for name in ("missing", "flagged", "overdue", "tags", "signoff")]
    assert sections == sorted(sections)
    missing = text[sections[0] : sections[1]]
    assert a.students[2].name in missing and a.students[5].name in missing
    assert a.students[0].name not in missing
    assert world["B"].students[3].name not in text
    flagged = text[sections[1] : sections[2]]
    assert a.students[1].name in flagged and "38.1" in flagged
    overdue = text[sections[2] : sections[3]]
    assert a.students[2].name in overdue  # yesterday's fever, still open
    assert "38.2" in overdue
    tags = text[sections[3] : sections[4]]
    assert a.students[1].name in tags
    # The noon slot has not opened at 09:30.
    assert "午检" not in missing


def test_morning_page_flags_bot_like_reports(client, world, day, settings):
    a = world["A"]
    settings.TONGXIN = {**settings.TONGXIN, "CHECKIN_LAZY_BOT_DAYS": 2}
    student = a.students[5]
    for back in (2, 1):
        submit(student, when=local(7, 0, 0, day=day.today - dt.timedelta(days=back)))
    submit(student, when=local(7, 0, 0))
    assert DailyReport.objects.get(student=student, date=day.today).suspected_bot

    text = page(client, a.counsellor, "/dashboard/today/")

    flagged = text[text.index('id="flagged"') : text.index('id="overdue"')]
    assert student.name in flagged
    assert "连续多日" in flagged


def test_signoff_from_the_morning_page(client, world, day):
    a = world["A"]
    client.force_login(a.counsellor)
    text = client.get("/dashboard/today/").text
    assert f'data-unit="grade:{a.grade.pk}" data-date="{day.yesterday.isoformat()}"' in text

    # Today has no roll-up yet: the service's refusal is shown.
    refused = client.post(
        "/dashboard/actions/signoff/",
        {"level": "grade", "unit": a.grade.pk, "date": day.today.isoformat(), "next": "/dashboard/today/"},
        follow=True,
    )
    assert "该日的汇总尚未生成，无法确认" in refused.text
    assert not SignOff.objects.exists()

    done = client.post(
        "/dashboard/actions/signoff/",
        {"level": "grade", "unit": a.grade.pk, "date": day.yesterday.isoformat(), "remarks": "已核对"},
        follow=True,
    )
    signoff = SignOff.objects.get(level="grade", unit_id=a.grade.pk, date=day.yesterday)
    assert signoff.state == SignOffState.CONFIRMED and signoff.remarks == "已核对"
    assert "已确认" in done.text


def test_signoff_refused_for_a_foreign_grade(client, world, day):
    client.force_login(world["A"].counsellor)

    response = client.post(
        "/dashboard/actions/signoff/",
        {"level": "grade", "unit": world["B"].grade.pk, "date": day.yesterday.isoformat()},
        follow=True,
    )

    assert not SignOff.objects.exists()
    assert "您无权确认该单位的数据" in response.text


def test_college_admin_confirms_college_after_its_grades(client, world, day):
    a = world["A"]
    client.force_login(a.college_admin)
    payload = {"level": "college", "unit": a.college.pk, "date": day.yesterday.isoformat()}

    pending = client.post("/dashboard/actions/signoff/", payload, follow=True)
    assert "下级单位尚未全部确认" in pending.text

    client.post("/dashboard/actions/signoff/", {**payload, "level": "grade", "unit": a.grade.pk})
    client.post("/dashboard/actions/signoff/", payload)
    assert SignOff.objects.get(level="college", unit_id=a.college.pk).state == SignOffState.CONFIRMED


def test_monitor_morning_page_has_names_only(client, world, day):
    a = world["A"]

    text = page(client, a.monitor, "/dashboard/today/")

    assert a.students[2].name in text
    assert a.students[5].name not in text  # the other class
    assert 'data-action="contacted"' not in text
    assert 'id="flagged"' not in text


def test_abnormal_and_follow_up_lists_show_the_report(client, world, day):
    """Today's fever (student 2 of campus A) on the abnormal list and, for the
    counsellor who chases it, on the follow-up list with its form; a coordinator sees
    the row without the form.  In English the flag is English."""
    a = world["A"]
    report = DailyReport.objects.get(student=a.students[1], date=day.today)

    def row(fragment: str) -> str:
        start = fragment.index(f'<tr data-report="{report.pk}" class="is-alert">')
        return fragment[start : fragment.index("</tr>", start)]

    counsellor = page(client, a.counsellor, unit_url(f"school_class:{a.classes[0].pk}", slot="morning"))
    for name in ("abnormal", "follow-ups"):
        cells = row(_section(counsellor, name))
        assert a.students[1].student_number in cells and a.students[1].name in cells
        assert a.classes[0].name in cells and "38.1" in cells and '<span class="tag">体温异常</span>' in cells
        assert 'data-action="follow-up"' in cells
    assert "异常报告（晨检，1 份）" in counsellor

    coordinator = page(client, a.coordinator, unit_url(f"campus:{a.campus.pk}", slot="morning"))
    cells = row(_section(coordinator, "abnormal"))
    assert "38.1" in cells and "待跟进" in cells and 'data-action="follow-up"' not in cells
    assert 'id="follow-ups"' not in coordinator  # a coordinator chases no one

    english = page(client, a.counsellor, unit_url(f"school_class:{a.classes[0].pk}", slot="morning"),
                   **{"Accept-Language": "en"})  # fmt: skip
    assert '<span class="tag">Abnormal temperature</span>' in row(_section(english, "abnormal"))
    form = row(_section(english, "follow-ups"))  # the list's labels, translated once for the list
    assert 'placeholder="What was done"' in form and 'data-action="follow-up">Followed up</button>' in form


def test_a_list_counts_only_a_full_page(world, day, django_assert_num_queries):
    """A dashboard list's total: a page that is not full is the whole list (no count
    statement), a full one is counted — so a truncated list still says how many."""
    from campuses.scoping import scope_for
    from reports.dashboard import _report_page, missing_page
    from reports.selectors import report_list
    from students.models import Student

    a = world["A"]
    scope_for(a.counsellor)  # read the scope before counting statements
    students = Student.objects.filter(campus=a.campus)
    missing = {"user": a.counsellor, "on": day.today, "slot_code": "morning", "students": students}
    with django_assert_num_queries(2):  # the page and its details
        whole = missing_page(**missing, limit=5)
    with django_assert_num_queries(3):  # and the count
        cut = missing_page(**missing, limit=1)
    assert (whole.total, len(whole.rows), whole.truncated) == (2, 2, False)
    assert (cut.total, len(cut.rows), cut.truncated) == (2, 1, True)
    assert missing_page(**missing, limit=2).total == 2  # exactly full: counted, the same

    reports = report_list(user=a.counsellor).filter(date=day.today, campus=a.campus).order_by("student_id")
    scope = scope_for(a.counsellor)
    with django_assert_num_queries(1):
        whole = _report_page(reports, scope, 10)
    with django_assert_num_queries(2):
        cut = _report_page(reports, scope, 2)
    assert (whole.total, len(whole.rows)) == (3, 3)
    assert (cut.total, [r.student_id for r in cut.rows]) == (3, [s.pk for s in a.students[:2]])


def test_the_proxy_forms_inputs_are_in_the_pages_language(client, world, day):
    """The proxy form's inputs are rendered once per process and language
    (reports.forms.proxy_fields): a page in English after one in Chinese, and Chinese
    again after it, each get their own language's choices."""
    a = world["A"]
    url = unit_url(f"school_class:{a.classes[0].pk}", slot="morning")

    def health_options(text: str) -> list[str]:
        form = text[text.index('data-action="proxy"') :]
        select = re.search(r'<select name="health_status"[^>]*>(.*?)</select>', form, re.S).group(1)
        return re.findall(r"<option [^>]*>([^<]*)</option>", select)

    chinese = health_options(page(client, a.counsellor, url))
    english = health_options(page(client, a.counsellor, url, **{"Accept-Language": "en"}))
    again = health_options(page(client, a.counsellor, url))
    assert chinese[0] == again[0] == "健康"
    assert english[0] == "Well"
    assert len(chinese) == len(english) == len(HealthStatus.choices)
    assert not set(chinese) & set(english)
