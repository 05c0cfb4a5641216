"""The inbox API mounted where the project's v1 API mounts it, for tests that must not
depend on the project URLconf."""

from django.urls import include, path

urlpatterns = [path("api/v1/notifications/", include("notifications.api.urls"))]
