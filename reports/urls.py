"""URLs of the dashboards, mounted at ``/dashboard/`` (namespace ``reports``)."""

from __future__ import annotations

from django.urls import path

from reports import views

app_name = "reports"

urlpatterns = [
    path("", views.dashboard_view, name="dashboard"),
    path("today/", views.today_view, name="today"),
    path("students/<int:student_id>/", views.student_view, name="student"),
    path("actions/contacted/", views.contacted_view, name="contacted"),
    path("actions/proxy/", views.proxy_view, name="proxy"),
    path("actions/follow-up/", views.follow_up_view, name="follow-up"),
    path("actions/signoff/", views.signoff_view, name="signoff"),
]
