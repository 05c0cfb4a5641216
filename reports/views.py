"""Dashboard pages (数据看板, 今日工作, 一生一档) and the small POST actions on them.

Thin views: pages read through :mod:`reports.dashboard` (every selector takes the
acting user and goes through :func:`campuses.scoping.scope_for`); actions call the
services (:mod:`reports.services`, :mod:`reports.signoff`), which check that the user
may do it — a button that is not shown is also refused when posted.  Actions answer
with a redirect back to the page and a message (POST/redirect/GET).
"""

from __future__ import annotations

import datetime as dt
import functools
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from reports import dashboard, live_lists, services
from reports.forms import ContactForm, ProxyForm, proxy_fields
from reports.services import ReportAnswer, SubmitOutcome
from reports.signoff import SIGNOFF_LEVELS, SignOffError, signoff_confirm
from reports.templatetags.tongxin_urls import cached_url
from students.models import ContactLog


def staff_required(view):
    """Signed-in staff only: anonymous users go to the admin login, anyone else who is
    not staff (a student) is refused.  What a staff member sees is up to the selectors."""

    @functools.wraps(view)
    def inner(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return inner


def _parse_date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def dashboard_url(unit_key: str, *, on: dt.date | None = None, slot: str | None = None, today=None) -> str:
    params = {"unit": unit_key}
    if on is not None and on != today:
        params["date"] = on.isoformat()
    if slot:
        params["slot"] = slot
    return f"{cached_url('reports:dashboard')}?{urlencode(params)}"


# ---------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------
@require_GET
@staff_required
def dashboard_view(request: HttpRequest) -> HttpResponse:
    """数据看板: ``?unit=<level>:<id>&date=<YYYY-MM-DD>&slot=<code>``; a unit outside the
    user's scope is a 404, a future date is today."""
    tops = dashboard.dashboard_units(user=request.user)
    wanted = request.GET.get("unit")
    if wanted:
        parsed = dashboard.parse_unit(wanted)
        node = next((top for top in tops if parsed and (top.level, top.id) == parsed), None)  # one of mine
        if node is None and parsed:
            node = dashboard.dashboard_unit(user=request.user, level=parsed[0], unit_id=parsed[1])
        if node is None:
            raise Http404(_("没有这个单位，或不在您的管理范围内。"))
    elif tops:
        node = tops[0]
    else:
        return render(request, "reports/no_units.html", status=200)

    fresh = live_lists.take_fresh(request.session, node)
    board = dashboard.dashboard(
        user=request.user,
        node=node,
        on=_parse_date(request.GET.get("date")),
        slot_code=request.GET.get("slot"),
        lists=False,
        fresh=fresh,
    )
    on, today, slot = board.on, board.today, board.slot_code

    def url(key: str, day: dt.date = on, slot_code: str | None = slot) -> str:
        return dashboard_url(key, on=day, slot=slot_code, today=today)

    crumbs = []
    for i, ref in enumerate(node.chain):
        visible = any(top.ref in node.chain[: i + 1] for top in tops)
        crumbs.append((ref, url(ref.key) if visible and ref != node.ref else None))
    context = {
        "board": board,
        "node": node,
        "crumbs": crumbs,
        "tops": [(top, url(top.key), node.is_within(top)) for top in tops],
        "slot_tabs": [(s, url(node.key, slot_code=s.code)) for s in board.slots],
        "children": [(ref, figures, url(ref.key)) for ref, figures in board.children],
        "day_links": {
            "prev": url(node.key, on - dt.timedelta(days=1)),
            "next": url(node.key, on + dt.timedelta(days=1)) if on < today else None,
            "today": url(node.key, today) if on != today else None,
        },
        "ledger_query": urlencode({"unit": node.key, "date": on.isoformat(), **({"slot": slot} if slot else {})}),
    }
    if board.live and board.slot_code is not None:
        context["live_lists"] = live_lists.render_lists(request, board, here=request.get_full_path(), fresh=fresh)
    return render(request, "reports/dashboard.html", context)


@require_GET
@staff_required
def today_view(request: HttpRequest) -> HttpResponse:
    """今日工作: the counsellor's morning page."""
    page = dashboard.morning(user=request.user)
    return render(
        request,
        "reports/today.html",
        {"page": page, "here": request.get_full_path(), "proxy_fields": proxy_fields()},
    )


@require_GET
@staff_required
def student_view(request: HttpRequest, student_id: int) -> HttpResponse:
    """一生一档: one student; outside the user's scope is a 404."""
    try:
        weeks = min(max(int(request.GET.get("weeks", 4)), 1), 26)
    except ValueError:
        weeks = 4
    page = dashboard.student_page(user=request.user, student_id=student_id, weeks=weeks)
    if page is None:
        raise Http404(_("没有这个学生，或不在您的管理范围内。"))
    return render(
        request,
        "reports/student.html",
        {
            "page": page,
            "s": page.student,
            "here": request.get_full_path(),
            "weeks": weeks,
            "proxy_fields": proxy_fields(),
        },
    )


# ---------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------
def _back(request: HttpRequest) -> HttpResponseRedirect:
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("reports:today")
    return HttpResponseRedirect(target)


def _error_message(exc: ValidationError) -> str:
    return "；".join(str(m) for m in exc.messages)


def _form_error(form: forms.Form) -> str:
    return "；".join(f"{form.fields[name].label or name}: {' '.join(errors)}" for name, errors in form.errors.items())


@require_POST
@staff_required
def contacted_view(request: HttpRequest) -> HttpResponse:
    """已联系: one contact-log entry (services.contact_log_create checks the user chases
    the student)."""
    form = ContactForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_error(form))
        return _back(request)
    data = form.cleaned_data
    try:
        services.contact_log_create(
            actor=request.user,
            student_id=data["student"],
            channel=data["channel"] or ContactLog.Channel.PHONE,
            outcome=data["outcome"] or ContactLog.Outcome.REACHED,
            note=data["note"],
        )
    except ValidationError as exc:
        messages.error(request, _error_message(exc))
    else:
        live_lists.mark_fresh(request.session)  # the page it goes back to shows it
        messages.success(request, _("已登记联系记录。"))
    return _back(request)


@require_POST
@staff_required
def proxy_view(request: HttpRequest) -> HttpResponse:
    """代报: a proxy report through services.report_submit_proxy (which checks the user
    chases the student and writes the contact-log entry)."""
    form = ProxyForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_error(form))
        return _back(request)
    data = form.cleaned_data
    try:
        answer = ReportAnswer.clean(
            require_temperature=False,
            temperature=data["temperature"],
            health_status=data["health_status"],
            whereabouts=data["whereabouts"],
            province_code=data["province_code"],
            city_code=data["city_code"],
        )
        result = services.report_submit_proxy(
            actor=request.user,
            student_id=data["student"],
            slot_code=data["slot"],
            answer=answer,
            on=data["date"],
            note=data["note"],
        )
    except ValidationError as exc:
        messages.error(request, _error_message(exc))
    else:
        live_lists.mark_fresh(request.session)  # the page it goes back to shows it
        if result.outcome == SubmitOutcome.UNCHANGED:
            messages.info(request, _("报告与已有的一致，未作修改。"))
        else:
            messages.success(request, _("已代报：%(name)s") % {"name": result.report.student.name})
    return _back(request)


@require_POST
@staff_required
def follow_up_view(request: HttpRequest) -> HttpResponse:
    """已跟进: close a report's follow-up (services.report_follow_up_close)."""
    try:
        report_id = int(request.POST.get("report", ""))
    except ValueError:
        messages.error(request, _("报告不存在或不在您的管理范围内。"))
        return _back(request)
    try:
        services.report_follow_up_close(
            actor=request.user, report_id=report_id, note=(request.POST.get("note") or "")[:500]
        )
    except ValidationError as exc:
        messages.error(request, _error_message(exc))
    else:
        live_lists.mark_fresh(request.session)  # the page it goes back to shows it
        messages.success(request, _("已关闭跟进。"))
    return _back(request)


@require_POST
@staff_required
def signoff_view(request: HttpRequest) -> HttpResponse:
    """确认: confirm a unit's day (reports.signoff.signoff_confirm); its refusal is shown."""
    level = request.POST.get("level", "")
    day = _parse_date(request.POST.get("date"))
    try:
        unit_id = int(request.POST.get("unit", ""))
    except ValueError:
        unit_id = None
    if level not in SIGNOFF_LEVELS or unit_id is None or day is None:
        messages.error(request, _("确认请求不完整。"))
        return _back(request)
    try:
        signoff_confirm(
            user=request.user, on=day, level=level, unit_id=unit_id, remarks=(request.POST.get("remarks") or "")[:500]
        )
    except SignOffError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("已确认 %(date)s 的数据。") % {"date": day.isoformat()})
    return _back(request)
