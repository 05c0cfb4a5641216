"""{% chase_actions %}: a list's 已联系/代报 forms rendered once, each row's id put in."""

from __future__ import annotations

import datetime as dt

from django.template import Context, Template
from django.utils import translation

from reports.forms import proxy_fields

ROWS = [3, 41, 1_000_007]


def _context(**extra) -> Context:
    values = {
        "ids": ROWS,
        "csrf_token": "tok3n",
        "proxy_fields": proxy_fields(),
        "here": "/dashboard/?unit=school_class:4&slot=morning",
        "slot_code": "morning",
        "on": dt.date(2026, 12, 1),
    }
    return Context(values | extra)


def test_each_rows_forms_are_the_templates_own_for_that_student():
    with translation.override("zh-hans"):
        tag = Template("{% load chase_actions %}{% for sid in ids %}<li>{% chase_actions sid %}</li>{% endfor %}")
        include = Template(
            '{% for sid in ids %}<li>{% include "reports/_chase_actions.html" with student_id=sid %}</li>{% endfor %}'
        )
        rendered = tag.render(_context())
        assert rendered == include.render(_context())
    for student_id in ROWS:
        assert rendered.count(f'name="student" value="{student_id}"') == 2  # 已联系 and 代报
    assert "已联系" in rendered and 'value="2026-12-01"' in rendered and "tok3n" in rendered


def test_two_lists_of_a_page_keep_their_own_slot_and_day():
    template = Template(
        "{% load chase_actions %}"
        '{% with slot_code="morning" %}{% chase_actions 5 %}{% endwith %}|'
        '{% with slot_code="noon" on=other_day %}{% chase_actions 5 %}{% endwith %}'
    )
    morning, noon = template.render(_context(other_day=dt.date(2026, 12, 2))).split("|")
    assert 'name="slot" value="morning"' in morning and 'value="2026-12-01"' in morning
    assert 'name="slot" value="noon"' in noon and 'value="2026-12-02"' in noon
