"""Routes of the inbox API, included by the project's v1 API under ``notifications/``:
``""`` (list), ``unread-count/``, ``read-all/``, ``<id>/``, ``<id>/read/``."""

from rest_framework.routers import SimpleRouter

from notifications.api.views import NotificationViewSet

router = SimpleRouter()
router.register("", NotificationViewSet, basename="notification")

urlpatterns = router.urls
