"""Tongxin settings: one module, every deployment difference from the environment.

- ``DATABASE_URL`` unset → SQLite in ``var/tongxin.sqlite3`` (the embedded default);
  set → PostgreSQL through psycopg 3 (``postgres://user@host:5432/name``).
- ``REDIS_URL`` unset → local-memory cache and kombu's filesystem broker;
  set → Redis for the cache and the Celery broker.
- ``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG``, ``DJANGO_ALLOWED_HOSTS`` as usual.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # optional; absent on CI and fresh clones

# ---------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str(
    "DJANGO_SECRET_KEY",
    default="tongxin-embedded-default-key-change-me-in-production-0123456789",
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "axes",
    "simple_history",
    "django_celery_beat",
    "campuses",
    "students",
    "reports",
    "logistics",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes requires: turns a lockout on the admin login into a 429 page.
    "axes.middleware.AxesMiddleware",
]

#: Django's database sessions, read by one raw statement (config/sessions.py).
SESSION_ENGINE = "config.sessions"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# ---------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, with a health check that polls the socket before it asks the
        # server (config/postgresql/base.py): persistent connections, checked per request.
        DATABASES["default"]["ENGINE"] = "config.postgresql"
        DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=60))
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        # Parameters bound by the server, and a statement prepared on its connection
        # once it has run DJANGO_DB_PREPARE_THRESHOLD times (psycopg's auto-prepare): it
        # is then parsed once per connection, not on every request.  Each run is still
        # planned for its own values (plan_cache_mode=force_custom_plan): a generic plan,
        # made once while a table is small, stays a sequential scan as the table grows
        # (the notification outbox in a reminder round) until the table is analysed
        # again.  Without server-side binding psycopg prepares nothing, so one setting
        # governs both.  "off" sends every statement with its parameters in, as Django
        # does by default — for PgBouncer in transaction mode before 1.21, which cannot
        # keep prepared statements.  Figures in bench/README.md.
        _prepare_threshold = env.str("DJANGO_DB_PREPARE_THRESHOLD", default="5").strip().lower()
        if _prepare_threshold not in ("off", "none", ""):
            _options = DATABASES["default"].setdefault("OPTIONS", {})
            _options.update(server_side_binding=True, prepare_threshold=int(_prepare_threshold))
            _options["options"] = f"{_options.get('options', '')} -c plan_cache_mode=force_custom_plan".strip()
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str("SQLITE_PATH", default=str(VAR_DIR / "tongxin.sqlite3")),
            # WAL lets the web app, the worker and beat share one file.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------------------
# Cache and Celery
# ---------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "tongxin",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 1, "visibility_timeout": 3600}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    _broker_dir = Path(env.str("CELERY_FILESYSTEM_DIR", default=str(VAR_DIR / "celery")))
    CELERY_BROKER_URL = "filesystem://"
    # kombu's filesystem transport with messages renamed into place once written whole
    # (config.celery_filesystem): a worker never takes a file that is still empty.
    CELERY_BROKER_TRANSPORT = "config.celery_filesystem:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Fanout bindings (worker remote control); the default is ./control in the cwd.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# The background exports and imports (config.jobs) take seconds to tens of seconds a
# job: they have a queue of their own, so that a deployment can give them a worker of
# their own and never hold up a reminder round (the Procfile's worker reads both).
BACKGROUND_QUEUE = "background"
CELERY_TASK_ROUTES = {
    "reports.ledger_jobs_dispatch": {"queue": BACKGROUND_QUEUE},
    "students.roster_jobs_dispatch": {"queue": BACKGROUND_QUEUE},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Project-level tasks outside INSTALLED_APPS (app tasks are autodiscovered).
CELERY_IMPORTS = ("config.tasks",)
# The schedule lives here, in code, reviewed like code; the DatabaseScheduler copies it
# into django-celery-beat's tables at start, where the admin can pause an entry or
# change its time for one deployment.  Crontabs run in CELERY_TIMEZONE (Asia/Shanghai).
# Due reminders are rows dispatched by a frequent task, never long eta/countdown.
_ROLLUP_HOUR, _ROLLUP_MINUTE = (int(x) for x in env.str("TONGXIN_ROLLUP_AT", default="23:30").split(":"))
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "config.heartbeat", "schedule": 60.0, "options": {"expires": 50}},
    "reminders-dispatch": {"task": "reports.reminders_dispatch", "schedule": 30.0, "options": {"expires": 25}},
    "notifications-dispatch": {
        "task": "notifications.deliveries_dispatch",
        "schedule": 15.0,
        "options": {"expires": 14},
    },
    "rollup-nightly": {
        "task": "reports.rollup_compile_day",
        "schedule": crontab(hour=_ROLLUP_HOUR, minute=_ROLLUP_MINUTE),
    },
    "cluster-detect": {"task": "reports.cluster_detect", "schedule": 600.0, "options": {"expires": 540}},
    "notifications-purge": {"task": "notifications.notifications_purge", "schedule": crontab(hour=3, minute=30)},
    "jwt-flush-expired": {"task": "reports.flush_expired_tokens", "schedule": crontab(hour=4, minute=10)},
    "ledger-jobs-dispatch": {"task": "reports.ledger_jobs_dispatch", "schedule": 5.0, "options": {"expires": 4}},
    "roster-jobs-dispatch": {"task": "students.roster_jobs_dispatch", "schedule": 5.0, "options": {"expires": 4}},
}

# ---------------------------------------------------------------------------
# Auth
# ---------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# django-axes' backend first: it refuses locked-out credentials before any password check.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, loading the user's student record with the user.
    "config.authentication.ModelBackend",
]
# Lock on the username *and* IP together, never on the IP alone: campus NAT puts
# thousands of students behind one address.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
# Behind nginx: number of trusted proxies in front of Django (0 = direct).
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if AXES_IPWARE_PROXY_COUNT else ("REMOTE_ADDR",)
)

# ---------------------------------------------------------------------------
# Internationalisation: Chinese first, English available
# ---------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# ---------------------------------------------------------------------------
# Static files
# ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# ---------------------------------------------------------------------------
# REST framework
# ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    # JWT bearer for the mobile app, the admin session for the web.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.authentication.JWTUserAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # {"errors": {field: [{"code": ..., "message": ...}]}} for every error: see config/exceptions.py.
    "EXCEPTION_HANDLER": "config.exceptions.exception_handler",
    # Scoped throttles on the shared cache (Redis in production; locmem is per process).
    # "login" is keyed by username + IP (config.api.LoginRateThrottle), never by IP alone.
    "DEFAULT_THROTTLE_RATES": {
        "login": env.str("TONGXIN_THROTTLE_LOGIN", default="20/min"),
        "checkin": env.str("TONGXIN_THROTTLE_CHECKIN", default="30/min"),
        "api": env.str("TONGXIN_THROTTLE_API", default="600/min"),
    },
}
SIMPLE_JWT = {
    # Short-lived access tokens; rotating refresh tokens, the old one blacklisted on use.
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=14)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "AUTH_HEADER_TYPES": ("Bearer",),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "同心 Tongxin API",
    "DESCRIPTION": (
        "REST API for the Tongxin mobile clients (v1).\n\n"
        "**Authentication**: `POST /api/v1/auth/token/` with username and password returns an access "
        "token (short-lived) and a refresh token (rotating: each refresh returns a new one and retires "
        "the old). Send `Authorization: Bearer <access>`. The web admin's session also works.\n\n"
        '**Errors** always have the shape `{"errors": {<field>: [{"code": ..., "message": ...}]}}`. '
        "`<field>` is an input field (nested fields joined with dots, list items by index), "
        "`non_field_errors` for a rule that spans fields, or `detail` for errors about the request as a "
        "whole (authentication, permission, not found, throttling). `code` is stable and machine-readable; "
        "`message` is for people, in Chinese by default and in English with `Accept-Language: en`. "
        "A locked-out login answers 429 with code `locked_out`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"SlotCodeEnum": "reports.models.SlotCode"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.exceptions.add_error_responses",
    ],
}

# ---------------------------------------------------------------------------
# Tongxin
# ---------------------------------------------------------------------------
TONGXIN = {
    # Rows per statement in set-based imports and seeding.
    "BULK_BATCH_SIZE": env.int("TONGXIN_BULK_BATCH_SIZE", default=2000),
    # Lazy-bot detection (晨午检 automation): flag a self-report identical to the previous
    # N days' answers, or sent at the same second of the day N days running.
    "CHECKIN_LAZY_BOT_DAYS": env.int("TONGXIN_CHECKIN_LAZY_BOT_DAYS", default=7),
    # Makes links in e-mail and group-robot messages absolute (e.g. https://tongxin.example.edu.cn).
    "SITE_URL": env.str("TONGXIN_SITE_URL", default=""),
    # A class with send(*, phone, text) raising notifications.channels.DeliveryError.
    "SMS_GATEWAY": env.str("TONGXIN_SMS_GATEWAY", default="notifications.channels.LoggingSmsGateway"),
    "NOTIFY_MAX_ATTEMPTS": 6,
    "NOTIFY_RETRY_BASE_SECONDS": 60,
    "NOTIFY_RETRY_MAX_SECONDS": 3600,
    "NOTIFY_LEASE_SECONDS": 300,
    "NOTIFY_DISPATCH_LIMIT": 500,
    "NOTIFY_RETENTION_DAYS": 365,
    # Campus- and university-level live figures on the dashboard are cached this long
    # (seconds; 0 = always live).  College, grade and class pages are always live.
    "DASHBOARD_LIVE_SECONDS": env.int("TONGXIN_DASHBOARD_LIVE_SECONDS", default=60),
    # Cluster alerts (聚集性预警): this many distinct students with an abnormal report in
    # the same room / building / class within the window raise one alert.
    "CLUSTER_MIN_CASES": env.int("TONGXIN_CLUSTER_MIN_CASES", default=3),
    "CLUSTER_WINDOW_HOURS": env.int("TONGXIN_CLUSTER_WINDOW_HOURS", default=48),
    "CLUSTER_LEVELS": env.list("TONGXIN_CLUSTER_LEVELS", default=["room", "building", "school_class"]),
    # Background ledgers (后台导出, reports.ledger_jobs): a student list over this many
    # enrolled students is built by the worker, not in the request; its file is kept this
    # many hours; a job is tried this many times, and one running longer than the lease
    # (seconds) is taken to have lost its worker.
    "LEDGER_SYNC_MAX_STUDENTS": env.int("TONGXIN_LEDGER_SYNC_MAX_STUDENTS", default=20000),
    "LEDGER_JOB_KEEP_HOURS": env.int("TONGXIN_LEDGER_JOB_KEEP_HOURS", default=72),
    "LEDGER_JOB_MAX_ATTEMPTS": 3,
    "LEDGER_JOB_LEASE_SECONDS": 900,
    # Background roster imports (后台导入, students.roster_jobs): an upload larger than
    # this many bytes is imported by the worker, not in the request; its result (whose
    # problems quote the file) is kept this many hours.
    "ROSTER_SYNC_MAX_BYTES": env.int("TONGXIN_ROSTER_SYNC_MAX_BYTES", default=1_000_000),
    "ROSTER_JOB_KEEP_HOURS": env.int("TONGXIN_ROSTER_JOB_KEEP_HOURS", default=72),
    "ROSTER_JOB_MAX_ATTEMPTS": 3,
    "ROSTER_JOB_LEASE_SECONDS": 1800,
}

# ---------------------------------------------------------------------------
# E-mail (console in the embedded default; SMTP with a timeout in production)
# ---------------------------------------------------------------------------
EMAIL_BACKEND = env.str("DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="同心学工系统 <noreply@localhost>")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
