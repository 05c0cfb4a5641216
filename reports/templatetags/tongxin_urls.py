"""``{% cached_url name [id] %}``: ``{% url %}`` for the lists' rows.

A list page reverses the same few URLs once per row — a student's page, the 已联系 and
代报 forms — and Django's ``reverse`` costs 30–50 µs a call on the benchmark's machine
(a campus's live page: 119 calls, 5 ms).  This tag reverses each URL name once per
script prefix and URLconf, with a marker in place of the id, and puts the row's id into
the result; anything but no argument or one integer goes through ``reverse``."""

from __future__ import annotations

from functools import lru_cache

from django import template
from django.urls import get_script_prefix, get_urlconf, reverse

register = template.Library()

_MARKER = 918273645  # an id no page puts in a URL by itself


@lru_cache(maxsize=256)
def _parts(name: str, with_id: bool, prefix: str, urlconf) -> tuple[str, str] | None:
    """The URL of ``name`` around its id (or whole, as the first part), or None if the
    marker does not come out exactly once."""
    if not with_id:
        return reverse(name, urlconf=urlconf), ""
    parts = reverse(name, args=[_MARKER], urlconf=urlconf).split(str(_MARKER))
    return (parts[0], parts[1]) if len(parts) == 2 else None


@register.simple_tag
def cached_url(name: str, *args) -> str:
    if len(args) > 1 or (args and type(args[0]) is not int):
        return reverse(name, args=args)
    parts = _parts(name, bool(args), get_script_prefix(), get_urlconf())
    if parts is None:
        return reverse(name, args=args)
    head, tail = parts
    return f"{head}{args[0]}{tail}" if args else head
