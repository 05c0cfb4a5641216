"""Ledger download URLs, included at ``ledgers/`` (namespace ``ledgers``).

Query parameters on each: ``date`` (ISO, default today), ``slot`` (slot code,
default morning; the abnormal list takes every slot unless given) and ``unit``
(``<level>:<id>``, e.g. ``college:12``; default the user's whole scope).
"""

from django.urls import path

from reports import views_ledgers

app_name = "ledgers"

urlpatterns = [
    path("stay/", views_ledgers.stay, name="stay"),
    path("rollup/", views_ledgers.rollup, name="rollup"),
    path("missing/", views_ledgers.missing, name="missing"),
    path("abnormal/", views_ledgers.abnormal, name="abnormal"),
    path("jobs/<int:pk>/download/", views_ledgers.job_download, name="job_download"),
]
