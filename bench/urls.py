"""The project's URLs plus ``/bench/ceiling/`` (bench.ceiling): used through
``DJANGO_SETTINGS_MODULE=bench.settings`` only, never in the product."""

from django.urls import path

from bench.ceiling import ceiling_view
from config import urls as _project

urlpatterns = [path("bench/ceiling/", ceiling_view, name="bench-ceiling"), *_project.urlpatterns]

handler404 = _project.handler404
handler500 = _project.handler500
