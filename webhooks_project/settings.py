"""Settings of the reference project.

Everything that differs between machines comes from the environment, so the same module serves
the embedded demo (SQLite, local Redis), CI and production (PostgreSQL). A host project does not
import this module; it copies the `WEBHOOKS` and Celery parts it wants (see docs/embedding.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
# The key signs sessions, password-reset links and portal links: a public fallback would let
# anyone forge them. Only a local run (DJANGO_DEBUG on) may start without one; `dev.py up`
# keeps a generated key in var/ instead.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY.strip():
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set and DJANGO_DEBUG is off: refusing to start with a "
            "public key. Set DJANGO_SECRET_KEY to a long random value, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`, kept the same "
            "across restarts and processes (web, worker, beat); or set DJANGO_DEBUG=1 for a "
            "local run."
        )
    SECRET_KEY = "django-insecure-local-only-change-me"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# --- HTTPS ----------------------------------------------------------------------------------
# DJANGO_HTTPS=1 in production (served over HTTPS): session and CSRF cookies only over HTTPS,
# plain-HTTP requests redirected, and HSTS telling browsers to use HTTPS only for a year
# (DJANGO_HSTS_SECONDS), subdomains included and preload allowed unless
# DJANGO_HSTS_INCLUDE_SUBDOMAINS / DJANGO_HSTS_PRELOAD say 0. `manage.py check --deploy` then
# has nothing to report about them. Behind a proxy that ends TLS, set
# DJANGO_SECURE_PROXY_SSL_HEADER to the header it sets and its value ("HTTP_X_FORWARDED_PROTO,
# https") so Django knows the request was HTTPS; only if the proxy always sets or strips it.
HTTPS = env_bool("DJANGO_HTTPS", False)
if HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)
_proxy_ssl_header = env_list("DJANGO_SECURE_PROXY_SSL_HEADER")
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2:
        raise ImproperlyConfigured(
            "DJANGO_SECURE_PROXY_SSL_HEADER must be a header and its value, e.g. "
            f"'HTTP_X_FORWARDED_PROTO,https', not {os.environ['DJANGO_SECURE_PROXY_SSL_HEADER']!r}."
        )
    SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header[0], _proxy_ssl_header[1])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "subscriptions",
    "deliveries",
    "webhooks_portal",
    # The reference project as an app only so that its demo event type
    # (webhooks_project/webhook_events.py) is declared; it has no models.
    "webhooks_project",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webhooks_project.urls"
WSGI_APPLICATION = "webhooks_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# DATABASE_URL selects the backend: postgres://user@host:5432/name in production, a SQLite file by
# default. Connections are kept open between requests (CONN_MAX_AGE) and checked before reuse.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
# PostgreSQL connection pool (psycopg_pool), off unless DATABASE_POOL_MAX_SIZE is set: a worker
# with hundreds of deliveries in flight (threads or gevent) then uses at most this many
# connections, each delivery holding one only while it queries (see deliveries/services/
# connections.py), instead of one per thread or greenlet. Django requires CONN_MAX_AGE = 0 with
# a pool; a connection taken from the pool costs microseconds, not a new backend.
DATABASE_POOL_MAX_SIZE = int(os.environ.get("DATABASE_POOL_MAX_SIZE", "0"))
if DATABASE_POOL_MAX_SIZE and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # With a pool, a health check is a round trip at every checkout, twice per delivery; the
    # delivery path replaces a dropped connection itself (deliveries/services/connections.py).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": 30,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    (BASE_DIR / "var").mkdir(exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        # The web process, the worker and beat write to the same file: WAL lets readers go on
        # while one writes, and the busy timeout makes a writer wait instead of failing.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
    }
    # Tests run a real worker in another process, so the test database must be a file too.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("SQLITE_TEST_NAME", str(BASE_DIR / "var" / "test_db.sqlite3"))
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve static files straight from the apps in every mode, so the admin and the offline API docs
# work under gunicorn without a collectstatic step in the demo.
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "admin:login"

# The first backend refuses password logins (the admin's form, the API's Basic) from an address
# or for a user name past WEBHOOKS["THROTTLE_RATES"]["failed_login"] failures; the second is
# Django's own.
AUTHENTICATION_BACKENDS = [
    "webhooks_core.authentication.FailedLoginBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# --- Django REST framework ------------------------------------------------------------------
REST_FRAMEWORK = {
    # DRF's token and basic authentication with failed attempts bounded per client address
    # (and user name), WEBHOOKS["THROTTLE_RATES"]["failed_login"]: guessing answers 429.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "webhooks_core.authentication.BoundedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "webhooks_core.authentication.BoundedBasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Webhooks API",
    "DESCRIPTION": "Publish events and manage webhook subscriptions.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Served from drf-spectacular-sidecar's static files: the docs page works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # As the API's own schema view names them (webhooks_core/apidocs.py); `check --deploy` builds
    # the schema with these settings.
    "ENUM_NAME_OVERRIDES": {"DeliveryStatusEnum": "deliveries.models.DeliveryStatus"},
}

# --- Celery ---------------------------------------------------------------------------------
# Every setting below exists because the default loses or duplicates work on a bad day. Names are
# Celery 5.7's (lowercase in `app.conf`, CELERY_-prefixed here); each is covered by a test in
# tests/test_reliability_settings.py or a fault test in tests/test_faults*.py.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
# Task results are never read: deliveries record their own outcome in the database.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Acknowledge after the task ran, so a worker killed mid-delivery leaves the message in Redis
# (the default acks before running: a kill loses the message, and only the sweep would notice).
CELERY_TASK_ACKS_LATE = True
# ...and a pool child killed by a signal or the OOM killer requeues its message instead of acking
# it (the default acks it as failed even with acks_late). The requeued copy finds the delivery
# claimed and stops; the sweep releases the stale claim (tests/test_faults.py, kill -9 a child).
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message reserved per process: a crashed worker holds nothing that others could have run.
# (Retries with a countdown are ETA messages that Celery keeps in memory past this limit; that is
# why WEBHOOKS["MAX_COUNTDOWN"] keeps those waits short and parks longer ones in the database.)
CELERY_WORKER_PREFETCH_MULTIPLIER = int(os.environ.get("CELERY_PREFETCH_MULTIPLIER", "1"))
# Celery's Django fixup closes the DB connection around every task; keeping it for many tasks
# saves a PostgreSQL connection (about 10 ms of server CPU) per delivery. The fixup reads exactly
# this name (`app.conf.get("CELERY_DB_REUSE_MAX")`); CELERY_WORKER_DB_REUSE_MAX is ignored.
CELERY_DB_REUSE_MAX = int(os.environ.get("CELERY_DB_REUSE_MAX", "1000"))
# A message not acknowledged within this many seconds is handed to another worker. A retry with a
# longer countdown would run again and again, so WEBHOOKS caps its longest Celery countdown at
# half of it (see MAX_COUNTDOWN in deliveries/conf.py) and parks longer waits in the database.
VISIBILITY_TIMEOUT = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": VISIBILITY_TIMEOUT,
    # With Redis down, publishing must fail within seconds (the event is already stored and the
    # sweep sends it later) instead of hanging the API request: connect and read timeouts on the
    # Redis socket (the default waits forever on a frozen Redis or a half-open connection).
    # Measured: POST /api/events/ answers 202 in 0.1 s with Redis stopped and 2.1 s with Redis
    # frozen by SIGSTOP (tests/test_faults_broker.py); the worker's BRPOP polls every second,
    # well inside the read timeout.
    "socket_connect_timeout": 2,
    "socket_timeout": 2,
    # ...and kombu's connection retry gives up after one quick retry.
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
    "retry_on_timeout": False,
    # Redis connections per worker process (kombu's default is 10). Under a gevent pool every
    # greenlet acknowledges its own message, so the pool must be at least the concurrency.
    "max_connections": int(os.environ.get("CELERY_BROKER_MAX_CONNECTIONS", "256")),
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded demo's fallback when no Redis is reachable: messages are files under var/,
    # and so is kombu's exchange table (its default is ./control, wherever the process starts).
    # No visibility timeout and no concurrency cap; use Redis for anything real.
    _broker_dir = BASE_DIR / "var" / "broker"
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    (_broker_dir / "control").mkdir(exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
# Connecting to the broker from the web process gives up after 2 s (default 4 s).
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# The worker keeps trying to reach Redis when it starts before it (a container started early).
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing from the web process: give up after one quick retry instead of Kombu's default of
# three retries with growing pauses while the HTTP request waits. Measured: POST /api/events/
# answers 202 in well under 5 s with Redis stopped (tests/test_faults_broker.py).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# SIGTERM (a deploy) is Celery's warm shutdown: no new message, and the running deliveries end,
# each within WEBHOOKS["TIMEOUT"] (the total deadline of an attempt), so give the process manager
# a stop timeout of TIMEOUT + 15 s (30 s by default; docker's default of 10 s is too short). This
# setting bounds the *cold* shutdown (SIGQUIT, or SIGTERM with REMAP_SIGTERM=SIGQUIT): running
# deliveries get this many seconds, then the worker hands back what it holds and exits, instead
# of abandoning a POST mid-way at once.
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = 20.0
# ...even when idle (cold shutdown): the worker may still hold retry messages with a countdown
# (ETA) in memory, and the soft shutdown path hands those back to the broker at once.
CELERY_WORKER_ENABLE_SOFT_SHUTDOWN_ON_IDLE = True
# When the connection to Redis drops, let running deliveries finish their POST and record the
# outcome in the database (which does not need Redis). Cancelling them (Celery 6's default)
# would kill the request mid-way and force a second POST once the claim goes stale; the message
# redelivered afterwards finds the attempt done and stops.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_DEFAULT_QUEUE = "webhooks"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
# The periodic tasks the pipeline needs (sweep, dead endpoints, pruning) join the beat schedule
# by themselves (deliveries/schedule.py); CELERY_BEAT_SCHEDULE is for the project's own tasks.


# --- Cache ---------------------------------------------------------------------------------
# The API's budgets (WEBHOOKS["THROTTLE_RATES"]) and the failed-login bound count in the
# default cache. Every web process must share it, or each counts alone and every limit is
# multiplied by the number of processes (the Procfile runs two). DJANGO_CACHE_URL names a Redis
# for it; without it, the broker's Redis is used, on the next database number (broker on /0:
# cache on /1), so that flushing one never empties the other. Only a broker that is not Redis
# (RabbitMQ, the demo's filesystem) leaves each process its own memory, and `manage.py check`
# warns about that with DEBUG off (webhooks.W018).
def redis_cache_url(broker_url: str) -> str | None:
    """The broker's Redis URL on its next database number, or None if the broker is not
    Redis."""
    parts = urlsplit(broker_url)
    if parts.scheme not in {"redis", "rediss"}:
        return None
    database = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(database + 1) % 16}"))


CACHE_URL = os.environ.get("DJANGO_CACHE_URL") or redis_cache_url(CELERY_BROKER_URL)
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "webhooks",
            # A Redis that is down or frozen must not hang requests: the throttles let
            # requests through when the cache fails (webhooks_core/throttling.py).
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }


# --- Webhooks -------------------------------------------------------------------------------
# Every key and its default is documented in webhooks_core/conf.py (the shared and registry keys),
# deliveries/conf.py (the pipeline's) and docs/settings.md.
WEBHOOKS = {
    "ALLOW_PRIVATE_NETWORKS": env_bool("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", False),
    "ALLOW_HTTP": env_bool("WEBHOOKS_ALLOW_HTTP", False),
    "METRICS_ENABLED": env_bool("WEBHOOKS_METRICS_ENABLED", False),
    "METRICS_TOKEN": os.environ.get("WEBHOOKS_METRICS_TOKEN") or None,
    # A down-converter whose output misses its version's schema fails the publish while
    # developing; in production it is logged and the event still goes out.
    "DOWNGRADE_ERRORS": "raise" if DEBUG else "log",
    # Recorded schemas of the declared event types (`manage.py webhooks_contracts --write`).
    "CONTRACTS_FILE": str(BASE_DIR / "webhook_contracts.json"),
    # Fernet keys for secrets at rest, comma-separated, the first encrypting. Unset: a key
    # derived from DJANGO_SECRET_KEY, which `check --deploy` reports (docs/security.md).
    "ENCRYPTION_KEYS": env_list("WEBHOOKS_ENCRYPTION_KEYS"),
    # An HTTP CONNECT proxy for deliveries (e.g. http://10.0.0.5:3128), and the addresses
    # deliveries leave from, served at /api/egress-ips/ for receivers' allow-lists.
    "EGRESS_PROXY": os.environ.get("WEBHOOKS_EGRESS_PROXY") or None,
    "EGRESS_IPS": env_list("WEBHOOKS_EGRESS_IPS"),
    # The Redis of the counters all workers share (in-flight caps). Unset, the broker's URL when
    # the broker is Redis; with RabbitMQ it is required (system check webhooks.E030).
    "REDIS_URL": os.environ.get("WEBHOOKS_REDIS_URL") or None,
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded demo without any Redis (dev.py says so when it falls back): there is nowhere
    # to count deliveries in flight, so the caps are off, knowingly, in this case only.
    SILENCED_SYSTEM_CHECKS = ["webhooks.E030"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "deliveries": {"level": os.environ.get("WEBHOOKS_LOG_LEVEL", "INFO")},
        "subscriptions": {"level": os.environ.get("WEBHOOKS_LOG_LEVEL", "INFO")},
    },
}
