"""The forms of the dashboards' actions (已联系, 代报)."""

from __future__ import annotations

import functools

from django import forms
from django.utils import translation
from django.utils.translation import gettext_lazy

from reports.models import HealthStatus, SlotCode
from students.models import ContactLog, Whereabouts


class ContactForm(forms.Form):
    student = forms.IntegerField(min_value=1)
    channel = forms.ChoiceField(choices=ContactLog.Channel.choices, initial=ContactLog.Channel.PHONE, required=False)
    outcome = forms.ChoiceField(
        choices=[c for c in ContactLog.Outcome.choices if c[0] != ContactLog.Outcome.PROXY_REPORTED],
        initial=ContactLog.Outcome.REACHED,
        required=False,
    )
    note = forms.CharField(max_length=500, required=False)


class ProxyForm(forms.Form):
    """代报: what the counsellor heard on the phone."""

    student = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    slot = forms.ChoiceField(label=gettext_lazy("时段"), choices=SlotCode.choices)
    date = forms.DateField(label=gettext_lazy("日期"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    temperature = forms.DecimalField(
        label=gettext_lazy("体温(°C)"),
        required=False,
        min_value=34,
        max_value=42,
        decimal_places=1,
        max_digits=4,
        widget=forms.NumberInput(attrs={"step": "0.1", "placeholder": "36.5"}),
    )
    health_status = forms.ChoiceField(
        label=gettext_lazy("健康状况"), choices=HealthStatus.choices, initial=HealthStatus.HEALTHY
    )
    whereabouts = forms.ChoiceField(label=gettext_lazy("所在地"), choices=Whereabouts.choices)
    province_code = forms.CharField(label=gettext_lazy("省份代码"), max_length=6, required=False)
    city_code = forms.CharField(label=gettext_lazy("城市代码"), max_length=6, required=False)
    note = forms.CharField(label=gettext_lazy("备注"), max_length=500, required=False)


def proxy_fields() -> dict[str, str]:
    """The proxy form's inputs, rendered once per process and language: every row of a
    missing list repeats them (rendering widgets row by row cost more than the page's
    queries, and rendering them for each page a twentieth of a class's live page).
    They hold nothing of the viewer or the row: the form is unbound, its choices fixed."""
    return dict(_proxy_fields(translation.get_language()))


@functools.cache
def _proxy_fields(language: str | None) -> tuple[tuple[str, str], ...]:
    form = ProxyForm(auto_id=False)
    names = ("temperature", "health_status", "whereabouts", "province_code", "city_code", "note")
    return tuple((name, str(form[name])) for name in names)
