"""Tongxin's own settings (``settings.TONGXIN``), read with their defaults."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def tongxin_setting(name: str, default: Any) -> Any:
    """A value from ``settings.TONGXIN`` with a default (the lead owns settings.py)."""
    return getattr(settings, "TONGXIN", {}).get(name, default)
