"""``{% chase_actions student_id %}``: a list row's 已联系 and 代报 forms.

``reports/_chase_actions.html`` costs 0.4 ms a row to render on the benchmark's machine
(two forms, their CSRF tokens, nine translated labels), and a counsellor's morning page
lists up to 300 students who have not reported.  Within one list every row's forms are
the same but for the student's id, so the tag renders the template once per list (and
slot, day and page), with a marker for the id, and puts each row's id in.  The template
must write ``student_id`` as it is (no filter on it)."""

from __future__ import annotations

from django import template
from django.utils.safestring import mark_safe

register = template.Library()

TEMPLATE = "reports/_chase_actions.html"
_MARKER = "__tongxin_chase_student_id__"


def _render(context, student_id) -> str:
    with context.push(student_id=student_id):
        return context.template.engine.get_template(TEMPLATE).render(context)


@register.simple_tag(takes_context=True)
def chase_actions(context, student_id: int) -> str:
    key = ("chase_actions", context.get("slot_code"), str(context.get("on")), context.get("here"))
    pieces = context.render_context.get(key)
    if pieces is None:
        pieces = context.render_context[key] = _render(context, _MARKER).split(_MARKER)
    return mark_safe(str(int(student_id)).join(pieces))
