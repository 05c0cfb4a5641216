"""{% cached_url %}: the lists' per-row URLs, reversed once per name and script prefix."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.urls import clear_script_prefix, reverse, set_script_prefix

from reports.templatetags.tongxin_urls import cached_url


@pytest.fixture
def script_prefix():
    yield set_script_prefix
    clear_script_prefix()


def test_a_rows_url_is_the_one_reverse_gives(script_prefix):
    for student_id in (1, 7, 918273645, 10**12):
        assert cached_url("reports:student", student_id) == reverse("reports:student", args=[student_id])
    for name in ("reports:contacted", "reports:proxy", "reports:follow-up"):
        assert cached_url(name) == reverse(name)
    script_prefix("/tongxin/")  # served under a path: each prefix its own URLs
    assert cached_url("reports:student", 42) == reverse("reports:student", args=[42])
    assert cached_url("reports:student", 42).startswith("/tongxin/")
    assert cached_url("reports:contacted") == reverse("reports:contacted")
    clear_script_prefix()
    assert not cached_url("reports:student", 42).startswith("/tongxin/")


def test_other_arguments_go_through_reverse():
    assert cached_url("reports:student", "42") == reverse("reports:student", args=["42"])
    with pytest.raises(Exception, match="Reverse"):
        cached_url("reports:student", "not-an-id")


def test_the_tag_in_a_template_escapes_as_url_does():
    rendered = Template(
        "{% load tongxin_urls %}<a href=\"{% cached_url 'reports:student' sid %}\">{% url 'reports:student' sid %}</a>"
    ).render(Context({"sid": 3}))
    url = reverse("reports:student", args=[3])
    assert rendered == f'<a href="{url}">{url}</a>'
