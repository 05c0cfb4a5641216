"""Browser tests: headless Chromium (the system's /usr/bin/chromium, never a browser
downloaded by Playwright) drives the dashboards on a live server.

A coordinator logs in through the admin login form, the figures on the page equal
the database, the ECharts trend draws its canvas, drilling down reaches a student,
the English switch works, an export downloads and opens with openpyxl with the right
rows; a counsellor sees only their grade.  Screenshots go to test-artefacts/.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from django.conf import settings

from tests.dashboard.scenario import build_day, expected_figures
from tests.reports.checkin import local
from tests.world import PASSWORD, build_world

CHROMIUM = Path("/usr/bin/chromium")
ARTEFACTS = Path(settings.BASE_DIR) / "test-artefacts"
ECHARTS = Path(settings.BASE_DIR) / "static" / "vendor" / "echarts" / "echarts.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (`make browser` installs it)"),
]


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module.  Playwright's sync API runs an event loop in this
    thread, so Django's async-safety check must be relaxed here, and only here."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def scene(transactional_db, time_machine):
    """The persona world and a day of reports, committed so the live server sees them."""
    assert ECHARTS.exists(), "ECharts is missing from static/vendor/: run `make assets`"
    time_machine.move_to(local(9, 30), tick=True)
    world = build_world()
    return world, build_day(world)


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url, locale="zh-CN", viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def shot(page, name: str) -> None:
    ARTEFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def login(page, user) -> None:
    page.goto("/admin/login/?next=/dashboard/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/dashboard/")


def figure(page, scope: str, name: str) -> int:
    return int(page.locator(f'{scope} [data-figure="{name}"]').first.inner_text().strip())


def test_coordinator_logs_in_sees_the_figures_and_drills_down_to_a_student(page, scene):
    world, day = scene
    a = world["A"]

    login(page, a.coordinator)

    assert page.locator("h1").first.get_attribute("data-unit") == f"campus:{a.campus.pk}"
    for slot in ("morning", "noon"):
        want = expected_figures(on=day.today, slot_code=slot, campus=a.campus)
        for name, value in want.items():
            assert figure(page, f'[data-slot-card="{slot}"]', name) == value, (slot, name)
    college_row = f'tr[data-unit="college:{a.college.pk}"]'
    assert (
        figure(page, college_row, "missing")
        == expected_figures(on=day.today, slot_code="morning", college=a.college)["missing"]
    )
    page.wait_for_selector("#trend-chart canvas")
    shot(page, "dashboard-coordinator-campus")

    page.click(f'a[data-unit-link="college:{a.college.pk}"]')
    page.wait_for_selector(f'h1[data-unit="college:{a.college.pk}"]')
    page.click(f'a[data-unit-link="grade:{a.grade.pk}"]')
    page.wait_for_selector(f'h1[data-unit="grade:{a.grade.pk}"]')
    page.click(f'a[data-unit-link="school_class:{a.classes[0].pk}"]')
    page.wait_for_selector(f'h1[data-unit="school_class:{a.classes[0].pk}"]')
    assert (
        figure(page, '[data-slot-card="morning"]', "reported")
        == expected_figures(on=day.today, slot_code="morning", school_class=a.classes[0])["reported"]
    )
    shot(page, "dashboard-coordinator-class")

    student = a.students[1]
    page.click(f'table[data-table="roster"] a[href="/dashboard/students/{student.pk}/"]')
    page.wait_for_selector(f'h1[data-student="{student.pk}"]')
    assert student.name in page.locator("h1").inner_text()
    assert page.locator('[data-field="phone"]').inner_text() == "138****0002"
    assert "38.1" in page.locator('[data-list="timeline"]').inner_text()
    shot(page, "student-page-coordinator")


def test_english_switch_turns_the_dashboard_english(page, scene):
    world, _day = scene
    login(page, world["A"].coordinator)
    assert "数据看板" in page.locator("nav.mainnav").inner_text()

    page.click('button[data-language="en"]')
    page.wait_for_selector("text=Dashboard")

    assert "Dashboard" in page.locator("nav.mainnav").inner_text()
    assert "Morning" in page.locator('[data-slot-card="morning"]').inner_text()
    assert page.locator("html").get_attribute("lang") == "en"
    page.wait_for_selector("#trend-chart canvas")
    shot(page, "dashboard-english")

    page.click('button[data-language="zh-hans"]')
    page.wait_for_selector("text=数据看板")


def test_counsellor_sees_only_their_grade(page, scene):
    world, day = scene
    a, b = world["A"], world["B"]

    login(page, a.counsellor)

    assert page.locator("h1").first.get_attribute("data-unit") == f"grade:{a.grade.pk}"
    assert (
        figure(page, '[data-slot-card="morning"]', "expected")
        == (expected_figures(on=day.today, slot_code="morning", grade=a.grade)["expected"])
    )
    body = page.locator("body").inner_text()
    assert b.campus.name not in body
    assert a.students[2].name in page.locator('[data-list="missing"]').inner_text()
    assert page.locator('[data-list="missing"] [data-action="proxy"]').count() == 2
    shot(page, "dashboard-counsellor-grade")
    for url in (
        f"/dashboard/?unit=campus:{a.campus.pk}",
        f"/dashboard/?unit=grade:{b.grade.pk}",
        f"/dashboard/students/{b.students[0].pk}/",
    ):
        assert page.goto(url).status == 404

    page.goto("/dashboard/today/")
    assert a.students[5].name in page.locator("#missing").inner_text()
    shot(page, "morning-page-counsellor")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto("/dashboard/")
    page.wait_for_selector("#trend-chart canvas")
    shot(page, "dashboard-counsellor-phone")
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391)"
        ".filter(e => !e.closest('.table-wrap')).map(e => e.tagName + '.' + e.className).slice(0, 10)"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide  # tables scroll, not the page


def test_counsellor_marks_contacted_from_the_missing_list(page, scene):
    from students.models import ContactLog

    world, _day = scene
    a = world["A"]
    login(page, a.counsellor)

    page.click(f'[data-list="missing"] tr[data-student="{a.students[2].pk}"] [data-action="contacted"]')
    page.wait_for_selector(".msg-success")

    assert ContactLog.objects.filter(student=a.students[2], contacted_by=a.counsellor).count() == 1
    row = page.locator(f'[data-list="missing"] tr[data-student="{a.students[2].pk}"]').inner_text()
    assert "已联系上" in row


def test_export_downloads_and_opens_with_the_right_rows(page, scene):
    """The missing-list ledger of the dashboard's unit, date and slot (reports.ledgers)."""
    import openpyxl

    world, _day = scene
    a, b = world["A"], world["B"]
    login(page, a.coordinator)

    with page.expect_download() as download_info:
        page.click('a[data-ledger="missing"]')
    download = download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    data = Path(download.path()).read_bytes()
    ARTEFACTS.mkdir(exist_ok=True)
    (ARTEFACTS / "export-missing.xlsx").write_bytes(data)

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    rows = [row for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)]
    assert "学号" in rows[0]
    cells = {str(v) for row in rows for v in row if v}
    numbers = {s.student_number for s in a.students + b.students}
    # Today's missing in campus A's morning slot: students 2 and 5, phones masked for a coordinator.
    assert numbers & cells == {a.students[2].student_number, a.students[5].student_number}
    assert a.students[2].phone not in cells


def test_a_campus_stay_ledger_goes_to_the_background_and_downloads_from_the_jobs_page(page, scene, settings):
    """Over the limit, the dashboard's 留校学生情况统计表 link lands on 后台导出 (reloading
    itself while the job waits), and once beat's dispatch has built it, its link
    downloads the workbook of the coordinator's campus only (reports.ledger_jobs)."""
    import openpyxl

    from reports.ledger_jobs import ledger_jobs_dispatch

    settings.TONGXIN = {**settings.TONGXIN, "LEDGER_SYNC_MAX_STUDENTS": 3}
    world, _day = scene
    a, b = world["A"], world["B"]
    login(page, a.coordinator)

    page.click('a[data-ledger="stay"]')
    page.wait_for_url("**/admin/reports/ledgerjob/")
    assert "已转入后台生成" in page.locator(".messagelist").inner_text()
    assert page.locator('meta[http-equiv="refresh"]').count() == 1
    assert page.locator("a.ledger-job-download").count() == 0

    assert ledger_jobs_dispatch()["run"] == 1  # what beat's next tick does
    page.reload()
    assert page.locator('meta[http-equiv="refresh"]').count() == 0
    with page.expect_download() as download_info:
        page.click("a.ledger-job-download")
    download = download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    page.screenshot(path=str(ARTEFACTS / "ledger-jobs.png"), full_page=True)

    book = openpyxl.load_workbook(io.BytesIO(Path(download.path()).read_bytes()), read_only=True)
    cells = {str(v) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for v in row if v}
    assert {s.student_number for s in a.students} <= cells
    assert not {s.student_number for s in b.students} & cells
