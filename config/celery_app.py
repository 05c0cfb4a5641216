"""The Celery application.

Broker: Redis when ``REDIS_URL`` is set (production, CI), otherwise kombu's
filesystem transport under ``var/celery`` so that the embedded default needs no
server while the worker and beat stay real processes.  Configuration lives in
``config.settings`` under the ``CELERY_`` prefix.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tongxin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
