"""Project-wide behaviour: Chinese first with English available, China time, the catalogs."""

from __future__ import annotations

import re
from pathlib import Path

import django_filters
import pytest
from django.apps import apps
from django.conf import settings
from django.utils import translation

from campuses.models import Campus

CJK = re.compile(r"[\u3400-\u9fff]")
OUR_APPS = [
    app.label
    for app in apps.get_app_configs()
    if Path(app.path).is_relative_to(settings.BASE_DIR) and ".venv" not in Path(app.path).parts
]


def test_settings_are_chinese_first_in_china_time():
    assert settings.LANGUAGE_CODE == "zh-hans"
    assert [code for code, _name in settings.LANGUAGES] == ["zh-hans", "en"]
    assert settings.TIME_ZONE == "Asia/Shanghai"
    assert settings.USE_TZ is True
    assert settings.USE_I18N is True


def test_admin_login_is_chinese_by_default(client):
    response = client.get("/admin/login/")

    assert response.status_code == 200
    assert response["Content-Language"] == "zh-hans"
    assert "用户名" in response.text
    assert "Username" not in response.text


def test_admin_login_is_english_with_accept_language(client):
    response = client.get("/admin/login/", headers={"accept-language": "en"})

    assert response["Content-Language"] == "en"
    assert "Username" in response.text
    assert "用户名" not in response.text


def test_admin_login_follows_language_cookie(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    response = client.get("/admin/login/", headers={"accept-language": "zh-CN"})

    assert response["Content-Language"] == "en"
    assert "Username" in response.text


def test_model_verbose_name_translates_to_english():
    with translation.override("en"):
        assert str(Campus._meta.verbose_name) == "Campus"
    with translation.override("zh-hans"):
        assert str(Campus._meta.verbose_name) == "校区"


def test_django_filter_labels_are_chinese_under_zh_hans():
    with translation.override("zh-hans"):
        labels = {value: str(label) for value, label in django_filters.DateRangeFilter.choices}

    assert labels["week"] == "过去 7 日"


def _labels_of(model) -> list[tuple[str, object]]:
    meta = model._meta
    labels = [(f"{meta.label} verbose_name", meta.verbose_name), (f"{meta.label} plural", meta.verbose_name_plural)]
    for field in meta.get_fields(include_hidden=False):
        if field.auto_created and not field.concrete:
            continue  # reverse relations borrow the other model's names
        where = f"{meta.label}.{field.name}"
        labels.append((where, getattr(field, "verbose_name", "")))
        for value, label in getattr(field, "flatchoices", None) or []:
            labels.append((f"{where}={value}", label))
    return labels


@pytest.mark.parametrize("app_label", OUR_APPS)
def test_english_catalog_covers_model_labels(app_label):
    """A Chinese label left in the English interface means locale/en needs `make messages`."""
    app = apps.get_app_config(app_label)
    labels = [(f"{app_label} app", app.verbose_name)]
    for model in app.get_models():
        if model.__name__.startswith("Historical"):
            continue  # django-simple-history copies the tracked model's labels
        labels.extend(_labels_of(model))

    with translation.override("en"):
        untranslated = [f"{where}: {label}" for where, label in labels if CJK.search(str(label))]

    assert not untranslated, "Untranslated in locale/en/LC_MESSAGES/django.po:\n" + "\n".join(untranslated)


def test_english_catalog_has_no_fuzzy_or_empty_translation():
    """msgfmt leaves fuzzy entries (guesses makemessages made from a similar message)
    and empty ones out of the compiled catalog, so their message shows in Chinese under
    English: every entry must be translated and checked."""
    po = (settings.BASE_DIR / "locale" / "en" / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    entries = po.split("\n\n")[1:]  # the first entry is the header
    fuzzy = [e for e in entries if "#, fuzzy" in e or "#, python-format, fuzzy" in e]
    empty = [e for e in entries if re.search(r'^msgstr ""\s*$', e, re.M) and not re.search(r'^msgstr ""\n"', e, re.M)]
    assert not fuzzy, "fuzzy entries:\n" + "\n\n".join(fuzzy)
    assert not empty, "untranslated entries:\n" + "\n\n".join(empty)
