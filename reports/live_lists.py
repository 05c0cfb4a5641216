"""A live dashboard's lists (未报名单, 异常报告, 待跟进), rendered for the page.

A campus's or the university's live figures are served from the cache for
:func:`reports.dashboard.live_cache_seconds` (60 s): their roll-up reads the whole unit.
The lists under them were read afresh on every view — on the benchmark's machine 16 of
the university page's 36 ms, and the template's rows most of the rest — and their count
was the cached figure while their rows were not.  At those two levels the lists are now
rendered once for the figures they belong to and kept with them:

- the key holds the figures' computation time, so the lists are never older than the
  figures above them and expire with them;
- it holds the viewer's :meth:`~campuses.scoping.Scope.fingerprint`, not the viewer:
  users who reach the same students through the same roles (a campus's coordinators)
  share one rendering, and a user whose grants differ never reads another's — which
  students, which details, which phones unmasked, which chase buttons;
- it holds the language;
- the forms' CSRF token and their ``next`` (the page's address) are markers in the kept
  HTML, replaced by the viewer's own token and address on every view;
- a user who has just acted from a page (已联系, 代报, 已跟进: :func:`mark_fresh`, a mark
  in their session) gets the figures and the lists computed afresh on their next view,
  so the page they are sent back to shows what they did; everyone else — and the same
  user in another browser — sees it within the minute.

Colleges, grades and classes — the counsellors' pages, from which students are chased —
are never cached: their lists are rendered for each view, as before.  A cache outage
renders the lists for each view.
"""

from __future__ import annotations

import contextlib
import time

from django.contrib.sessions.backends.base import SessionBase
from django.core.cache import cache
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from campuses.scoping import scope_for
from reports import dashboard
from reports.forms import proxy_fields

TEMPLATE = "reports/_live_lists.html"
#: Stand for the viewer's CSRF token and the page's address (the forms' ``next``) in
#: kept HTML: the templates write both as they are (no filter on them).
CSRF_MARKER = "__tongxin_csrf_token__"
HERE_MARKER = "__tongxin_here__"


#: The session's mark of :func:`mark_fresh`: until when (a POSIX time) its next view is
#: to be computed afresh.
FRESH_SESSION_KEY = "tongxin_dashboard_fresh"


def mark_fresh(session: SessionBase) -> None:
    """The user of ``session`` has just changed what a list shows: their next view of a
    campus's or the university's dashboard, from the same browser, is computed afresh
    (for up to :func:`~reports.dashboard.live_cache_seconds`, after which any view is).
    The mark lives in the session — which every signed-in page reads anyway — so a
    view pays no cache round trip to look for it."""
    seconds = dashboard.live_cache_seconds()
    if seconds > 0:
        session[FRESH_SESSION_KEY] = time.time() + seconds


def take_fresh(session: SessionBase, node: dashboard.UnitNode) -> bool:
    """Is this view of ``node`` to be computed afresh?  Consumes the mark of
    :func:`mark_fresh` (only for the levels whose pages are cached)."""
    if node.level not in dashboard.CACHED_LEVELS or FRESH_SESSION_KEY not in session:
        return False
    return time.time() < session.pop(FRESH_SESSION_KEY)


def _key(request: HttpRequest, board: dashboard.Dashboard) -> str:
    return (
        f"tongxin:dashboard:lists:{board.on.isoformat()}:{board.node.key}:{board.slot_code}:"
        f"{board.computed_at.isoformat()}:{translation.get_language()}:{scope_for(request.user).fingerprint()}"
    )


def render_lists(request: HttpRequest, board: dashboard.Dashboard, *, here: str, fresh: bool) -> SafeString:
    """The HTML of ``board``'s live lists for this request: from the cache where the
    unit's level is cached and an equal viewer's rendering of the same figures is
    there (unless ``fresh``), otherwise read (:func:`reports.dashboard.live_lists`) and
    rendered now — and kept for the next viewer."""
    keep = board.node.level in dashboard.CACHED_LEVELS and board.computed_at is not None
    seconds = dashboard.live_cache_seconds() if keep else 0
    key = _key(request, board) if seconds > 0 else None
    html = None
    if key is not None and not fresh:
        try:
            html = cache.get(key)
        except Exception:  # a cache outage must not take the dashboard down
            html = None
    if html is None:
        dashboard.live_lists(user=request.user, board=board)
        chases = board.missing is not None and any(r.may_chase for r in board.missing.rows)
        context = {
            "board": board,
            "here": HERE_MARKER,
            "proxy_fields": proxy_fields() if chases else {},
            "csrf_token": CSRF_MARKER,
        }
        html = render_to_string(TEMPLATE, context, request=request)
        if key is not None:
            with contextlib.suppress(Exception):
                cache.set(key, html, seconds)
    return mark_safe(html.replace(CSRF_MARKER, get_token(request)).replace(HERE_MARKER, escape(here)))
