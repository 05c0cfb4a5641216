"""The demo / benchmark check-in generator writes reports the services would have
written (COPY on PostgreSQL, executemany on SQLite) and the roll-ups of past days."""

import datetime as dt

import pytest
from django.utils import timezone

from campuses.demo import demo_seed
from reports.demo import checkin_history
from reports.models import CheckinSlot, DailyReport
from reports.reminder_models import ReminderStep
from reports.rollup_models import Level, RollupSnapshot
from reports.services import ReportAnswer
from students.models import Student
from tests.reports.test_rollup import recompute, stored

pytestmark = pytest.mark.django_db


@pytest.fixture
def history():
    demo_seed(students=240)
    now = timezone.make_aware(dt.datetime.combine(timezone.localdate(), dt.time(8, 30)))
    result = checkin_history(days=3, now=now, log=lambda _line: None)
    return now, result


def test_slots_and_ladders_for_every_campus(history):
    assert CheckinSlot.objects.filter(code="morning").count() == 3
    assert CheckinSlot.objects.filter(code="noon").count() == 1
    assert ReminderStep.objects.count() == 4 * 5


def test_reports_carry_the_students_units_and_derived_fields(history):
    now, result = history
    assert DailyReport.objects.count() == result["reports"] > 240 * 3
    students = {s.id: s for s in Student.objects.all()}
    for report in DailyReport.objects.select_related("slot")[:2000]:
        student = students[report.student_id]
        assert (report.campus_id, report.college_id, report.grade_id, report.school_class_id) == (
            student.campus_id,
            student.college_id,
            student.grade_id,
            student.school_class_id,
        )
        assert report.slot.campus_id == student.campus_id
        assert report.late == report.slot.is_late(report.date, report.submitted_at)
        answer = ReportAnswer.clean(
            temperature=report.temperature,
            symptoms=report.symptoms,
            whereabouts=report.whereabouts,
            province_code=report.province_code,
            city_code=report.city_code,
        )
        assert report.answer_hash == answer.digest()
        assert report.abnormal == bool(answer.health_flags())
    # today: only what was submitted before "now" (08:30): no noon reports yet
    assert not DailyReport.objects.filter(date=now.date(), slot__code="noon").exists()
    assert not DailyReport.objects.filter(submitted_at__gt=now).filter(date=now.date()).exists()


def test_past_days_are_rolled_up_correctly(history):
    now, _ = history
    for days_ago in (1, 3):
        day = now.date() - dt.timedelta(days=days_ago)
        for code in ("morning", "noon"):
            assert stored(day, code) == recompute(day, code)
    assert not RollupSnapshot.objects.filter(date=now.date()).exists()
    top = RollupSnapshot.objects.get(
        date=now.date() - dt.timedelta(days=1), slot_code="morning", level=Level.UNIVERSITY
    )
    assert 85 <= top.completion <= 100
