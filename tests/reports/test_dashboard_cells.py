"""{% figure_cells %} and {% signoff_cells %}: the dashboard's repeated cells, built in
Python, render exactly what the template markup they replace rendered (kept here as
the reference), in Chinese and in English."""

from __future__ import annotations

import datetime as dt

import pytest
from django.template import Context, Template
from django.utils import translation

from reports.dashboard import Figures, SignOffRow, UnitRef

#: The former reports/_figure_cells.html.
FIGURE_CELLS = (
    '<td class="num" data-figure="expected">{{ f.expected }}</td>\n'
    '<td class="num" data-figure="reported">{{ f.reported }}</td>\n'
    '<td class="num{% if f.missing %} warn{% endif %}" data-figure="missing">{{ f.missing }}</td>\n'
    '<td class="num" data-figure="excused">{{ f.excused }}</td>\n'
    '<td class="num" data-figure="late">{{ f.late }}</td>\n'
    '<td class="num" data-figure="proxy">{{ f.proxy }}</td>\n'
    '{% if show_health %}<td class="num{% if f.abnormal %} alert{% endif %}" data-figure="abnormal">'
    "{{ f.abnormal }}</td>{% endif %}\n"
    '<td class="num completion">{% if f.completion is not None %}<span class="bar" aria-hidden="true">'
    "<i style=\"width: {{ f.completion|floatformat:'0u' }}%\"></i></span>{% endif %}"
    '<span data-figure="completion">{% if f.completion is None %}—{% else %}'
    '{{ f.completion|floatformat:"1u" }}%{% endif %}</span></td>\n'
)
#: The former sign-off cells of reports/dashboard.html.
SIGNOFF_CELLS = (
    '{% translate "已确认" as label_confirmed %}{% translate "已退回" as label_reopened %}'
    '{% translate "待确认" as label_pending %}'
    "{% for day, state in row.cells %}"
    '<td class="num" data-state="{{ state|default:\'pending\' }}" title="{{ day.isoformat }}">'
    '{% if state == "confirmed" %}<span class="ok" aria-label="{{ label_confirmed }}">✓</span>'
    '{% elif state == "reopened" %}<span class="alert" aria-label="{{ label_reopened }}">↺</span>'
    '{% else %}<span class="muted" aria-label="{{ label_pending }}">·</span>{% endif %}</td>'
    "{% endfor %}"
)

FIGURES = [
    Figures(),  # nobody expected: no completion
    Figures(expected=30, reported=30),
    Figures(expected=1704, reported=1181, missing=511, excused=12, late=40, proxy=7, abnormal=3),
    Figures(expected=8, reported=7, missing=1),  # 87.5 %: rounded half up
    Figures(expected=3, reported=1, missing=2, abnormal=1),  # 33.3 %
    Figures(expected=200, reported=173, missing=27),  # 86.5 %: half up, not to even
    Figures(expected=99692, reported=99691, missing=1),  # 99.99… → 100.0
]


def _cells_of(html: str) -> str:
    return html.replace("\n", "")


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize("show_health", [True, False])
def test_figure_cells_render_what_the_template_rendered(language, show_health):
    tag = Template("{% load dashboard_cells %}{% figure_cells f %}")
    reference = Template(FIGURE_CELLS)
    with translation.override(language):
        for figures in FIGURES:
            context = {"f": figures, "show_health": show_health}
            rendered = tag.render(Context(context))
            assert rendered == _cells_of(reference.render(Context(context))), figures
            assert ('data-figure="abnormal"' in rendered) is show_health


def test_figure_cells_mark_what_needs_attention():
    rendered = Template("{% load dashboard_cells %}{% figure_cells f %}").render(
        Context({"f": FIGURES[2], "show_health": True})
    )
    assert '<td class="num warn" data-figure="missing">511</td>' in rendered
    assert '<td class="num alert" data-figure="abnormal">3</td>' in rendered
    assert 'style="width: 69%"' in rendered and '<span data-figure="completion">69.3%</span>' in rendered


ROW = SignOffRow(
    ref=UnitRef("college", 4, "法学院"),
    cells=tuple(
        (dt.date(2026, 11, 24) + dt.timedelta(days=n), state)
        for n, state in enumerate(["confirmed", None, "reopened", "", "pending", "confirmed", "<odd>"])
    ),
)


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_signoff_cells_render_what_the_template_rendered(language):
    with translation.override(language):
        rendered = Template("{% load dashboard_cells %}{% signoff_cells row %}").render(Context({"row": ROW}))
        reference = Template("{% load i18n %}" + SIGNOFF_CELLS).render(Context({"row": ROW}))
    assert rendered == reference
    assert rendered.count("<td ") == 7
    assert 'data-state="&lt;odd&gt;"' in rendered  # escaped
    label = "已确认" if language == "zh-hans" else "Confirmed"
    assert f'<span class="ok" aria-label="{label}">✓</span>' in rendered
