"""Root URLconf: the admin (Chinese by default, /en/ prefix not used: the language
comes from the browser or the language switch), i18n helpers."""

from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

admin.site.site_header = _("同心 · 学生工作管理系统")
admin.site.site_title = _("同心")
admin.site.index_title = _("学工管理")

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("dashboard/", include("reports.urls")),
    path("ledgers/", include("reports.urls_ledgers")),
    # The mobile API (a contract: see config/api.py), its OpenAPI 3 schema and the docs,
    # served from drf-spectacular-sidecar's static files (no CDN on campus intranets).
    path("api/v1/", include("config.api", namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

# Unknown URLs and crashes under /api/ answer in the API's JSON error shape.
handler404 = "config.exceptions.not_found"
handler500 = "config.exceptions.server_error"
