"""Root URLconf: the admin (Chinese by default, /en/ prefix not used: the language
comes from the browser or the language switch), i18n helpers."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "同心 · 学生工作管理系统"
admin.site.site_title = "同心"
admin.site.index_title = "学工管理"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
