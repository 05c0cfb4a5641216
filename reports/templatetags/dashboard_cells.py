"""The dashboard's repeated table cells, built in Python: ``{% figure_cells f %}`` (a
unit's figures: a row of the children's table and its total) and ``{% signoff_cells
row %}`` (a unit's last seven sign-off days).

Through Django's template engine each cell is a handful of nodes — a variable, a
filter, an ``if`` — at several microseconds a node: on the benchmark's machine a row
of figure cells cost about 0.5 ms and a sign-off row 0.8 ms, six of the 10.8 ms a
campus's past page spent in its template (a college's page has a row per grade, a
university's a row per campus).  As Django's admin builds its change-list rows in
Python (``items_for_result``), these tags write the same markup with ``format_html``;
the values are formatted as the template formatted them (``localize``,
``floatformat``), and escaped.
"""

from __future__ import annotations

from django import template
from django.conf import settings
from django.template.defaultfilters import floatformat
from django.utils.formats import localize
from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, gettext_noop

register = template.Library()

_COUNTS = ("expected", "reported", "missing", "excused", "late", "proxy")
#: A count's cell class when the count is not zero.
_NONZERO_CLASS = {"missing": " warn", "abnormal": " alert"}


def _number(value) -> str:
    """A count as ``{{ value }}`` shows it: localized and escaped (an int without a
    thousands separator is its digits: ``localize`` takes 10 µs to say so)."""
    if type(value) is int and not settings.USE_THOUSAND_SEPARATOR:
        return str(value)
    return conditional_escape(localize(value))


def _count_cell(name: str, value) -> str:
    css = _NONZERO_CLASS.get(name, "") if value else ""
    return f'<td class="num{css}" data-figure="{name}">{_number(value)}</td>'


@register.simple_tag(takes_context=True)
def figure_cells(context, f) -> SafeString:
    """The cells of one unit's figures (``f``: a :class:`reports.dashboard.Figures`);
    the abnormal count only where the context's ``show_health`` is true."""
    cells = [_count_cell(name, getattr(f, name)) for name in _COUNTS]
    if context.get("show_health"):
        cells.append(_count_cell("abnormal", f.abnormal))
    completion = f.completion
    if completion is None:
        cells.append('<td class="num completion"><span data-figure="completion">—</span></td>')
    else:
        width, shown = floatformat(completion, "0u"), floatformat(completion, "1u")
        cells.append(
            f'<td class="num completion"><span class="bar" aria-hidden="true"><i style="width: {width}%"></i></span>'
            f'<span data-figure="completion">{shown}%</span></td>'
        )
    return mark_safe("".join(cells))


#: A sign-off state's mark: (its class, the symbol, the msgid of its label).
_MARKS = {
    "confirmed": ("ok", "✓", gettext_noop("已确认")),
    "reopened": ("alert", "↺", gettext_noop("已退回")),
    None: ("muted", "·", gettext_noop("待确认")),
}


@register.simple_tag
def signoff_cells(row) -> SafeString:
    """The cells of one unit's sign-off row (``row``: a
    :class:`reports.dashboard.SignOffRow`): each day's state, its mark and label."""
    marks = {state: (css, mark, escape(gettext(msgid))) for state, (css, mark, msgid) in _MARKS.items()}
    cells = []
    for day, state in row.cells:
        known = state if state in marks else None
        css, mark, label = marks[known]
        shown = known or (escape(state) if state else "pending")
        cells.append(
            f'<td class="num" data-state="{shown}" title="{day.isoformat()}">'
            f'<span class="{css}" aria-label="{label}">{mark}</span></td>'
        )
    return mark_safe("".join(cells))
