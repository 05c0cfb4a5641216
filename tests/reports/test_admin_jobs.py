"""The jobs' admin pages are scoped like everything else."""

import datetime as dt

import pytest
from django.urls import reverse

from reports.reminder_models import Anchor, ReminderStep, StepKind
from reports.rollup import rollup_compile
from reports.signoff import signoff_confirm
from tests.reports.checkin import local, make_slots, submit

pytestmark = pytest.mark.django_db
DAY = dt.datetime.now(tz=dt.UTC).date() - dt.timedelta(days=2)


@pytest.fixture
def compiled(world):
    slots = make_slots(world)
    for key in ("A", "B"):
        submit(world[key].students[0], when=local(8, 0, day=DAY))
        ReminderStep.objects.create(slot=slots[key]["morning"], kind=StepKind.COUNSELLORS, anchor=Anchor.DUE)
    rollup_compile(on=DAY, slot_code="morning")
    signoff_confirm(user=world["B"].counsellor, on=DAY, level="grade", unit_id=world["B"].grade.pk)
    return slots


def names(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_snapshots_and_signoffs_show_only_units_in_scope(client, world, compiled):
    client.force_login(world["A"].coordinator)
    html = names(client, reverse("admin:reports_rollupsnapshot_changelist"))
    assert world["A"].college.name in html and world["A"].classes[0].name in html
    assert world["B"].college.name not in html and world["B"].campus.name not in html
    assert world.university.name not in html  # the level above is not theirs
    client.force_login(world["A"].counsellor)
    cl = client.get(reverse("admin:reports_rollupsnapshot_changelist")).context["cl"]
    assert {s.level for s in cl.result_list} == {"grade", "school_class"}
    assert list(client.get(reverse("admin:reports_signoff_changelist")).context["cl"].result_list) == []
    client.force_login(world["B"].counsellor)
    assert len(client.get(reverse("admin:reports_signoff_changelist")).context["cl"].result_list) == 1


def test_reminder_ladder_is_managed_per_campus(client, world, compiled):
    client.force_login(world["A"].coordinator)
    cl = client.get(reverse("admin:reports_reminderstep_changelist")).context["cl"]
    assert {s.slot.campus_id for s in cl.result_list} == {world["A"].campus.id}
    form = client.get(reverse("admin:reports_reminderstep_add")).context["adminform"].form
    assert {s.campus_id for s in form.fields["slot"].queryset} == {world["A"].campus.id}
    client.force_login(world["A"].counsellor)
    assert client.get(reverse("admin:reports_reminderstep_changelist")).status_code == 403


def test_rollup_runs_are_for_the_university_admin(client, world, compiled):
    client.force_login(world["A"].coordinator)
    assert client.get(reverse("admin:reports_rolluprun_changelist")).status_code == 403
    client.force_login(world.uni_admin)
    assert len(client.get(reverse("admin:reports_rolluprun_changelist")).context["cl"].result_list) == 1


def test_snapshot_list_latest_day_first_without_scanning_every_snapshot(client, world, compiled):
    """A year of snapshots is 1.7 million rows at 100,000 students: the list's filters
    offer fixed choices (no DISTINCT over the snapshots, as the date hierarchy and a
    values filter ran on every page) and the latest day comes first."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rollup_compile(on=DAY - dt.timedelta(days=1), slot_code="morning")
    client.force_login(world["A"].coordinator)
    url = reverse("admin:reports_rollupsnapshot_changelist")
    with CaptureQueriesContext(connection) as queries:
        cl = client.get(url).context["cl"]
    dates = [s.date for s in cl.result_list]
    assert dates[0] == DAY and dates[-1] == DAY - dt.timedelta(days=1) and dates == sorted(dates, reverse=True)
    assert not [q["sql"] for q in queries if "DISTINCT" in q["sql"]]
    assert not client.get(url + "?slot_code=noon").context["cl"].result_list
    morning = client.get(url + "?slot_code=morning").context["cl"]
    assert {s.slot_code for s in morning.result_list} == {"morning"} and len(morning.result_list) == len(dates)
    slot_filter = next(f for f in cl.filter_specs if getattr(f, "parameter_name", "") == "slot_code")
    assert [value for value, _label in slot_filter.lookup_choices] == ["morning", "noon", "evening"]
