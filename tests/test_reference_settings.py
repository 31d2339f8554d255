"""The reference project's settings: they refuse to run in production without a secret key (a
public fallback key would let anyone forge sessions, password-reset links and signed portal
links); budgets are shared by every process (the cache is the broker's Redis); one switch,
DJANGO_HTTPS, makes `manage.py check --deploy` silent."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.procs import ROOT

IMPORT = "import webhooks_project.settings as s; print('KEY', len(s.SECRET_KEY))"
# A strong key for the production-like runs below (check --deploy judges its strength).
STRONG_KEY = "Xq7!vR2#pL9@kM4$wN8%zT1^bH6&cJ3*dF5(gK0)yU-sE+aW=oI_eQ"


def clean_env(**env: str) -> dict[str, str]:
    """This process's environment without the reference project's variables, plus `env`."""
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "CELERY_", "WEBHOOKS_", "DATABASE_"))
    }
    return {**base, **env}


def import_settings(code: str = IMPORT, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("debug", [None, "0", "false", ""])
def test_no_secret_key_without_debug_refuses_to_start(debug):
    env = {"DJANGO_DEBUG": debug} if debug is not None else {}
    result = import_settings(**env)

    assert result.returncode != 0, result.stdout
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_an_empty_secret_key_is_no_key():
    result = import_settings(DJANGO_SECRET_KEY="   ")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_a_secret_key_from_the_environment_is_used():
    result = import_settings(DJANGO_SECRET_KEY="k" * 50)

    assert result.returncode == 0, result.stderr
    assert "KEY 50" in result.stdout


def test_debug_runs_without_a_key():
    result = import_settings(DJANGO_DEBUG="1")

    assert result.returncode == 0, result.stderr
    assert "KEY" in result.stdout


def test_manage_py_names_the_variable_to_set():
    base = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_SETTINGS_MODULE"}
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "Set DJANGO_SECRET_KEY" in result.stderr


# --- The cache: shared by every process ----------------------------------------------------

CACHE = (
    "import webhooks_project.settings as s; "
    "print('CACHE', getattr(s, 'CACHES', {}).get('default', {}).get('LOCATION', 'local'))"
)


@pytest.mark.parametrize(
    ("env", "location"),
    [
        ({"CELERY_BROKER_URL": "redis://broker.internal:6379/0"}, "redis://broker.internal:6379/1"),
        ({"CELERY_BROKER_URL": "rediss://:pw@r.example:6380/3"}, "rediss://:pw@r.example:6380/4"),
        (
            {
                "CELERY_BROKER_URL": "redis://broker.internal:6379/0",
                "DJANGO_CACHE_URL": "redis://cache.internal:6379/5",
            },
            "redis://cache.internal:6379/5",
        ),
        ({"CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//"}, "local"),
    ],
    ids=["broker-redis", "broker-rediss", "own-cache-url", "rabbitmq"],
)
def test_the_cache_is_the_brokers_redis_on_the_next_database(env, location):
    result = import_settings(CACHE, DJANGO_SECRET_KEY=STRONG_KEY, **env)

    assert result.returncode == 0, result.stderr
    assert f"CACHE {location}" in result.stdout


COUNT_FAILURES = """
import django, json, sys
django.setup()
from django.test import RequestFactory
from webhooks_core.throttling import FailedLogins
request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.77")
failures = FailedLogins(request, "alice")
for _ in range(int(sys.argv[1])):
    failures.record()
print("WAIT", failures.wait() is not None)
"""


def test_two_processes_share_one_failed_login_budget(broker):
    # The Procfile runs two web processes: each must see the other's failures.
    def process(recorded: int) -> str:
        result = subprocess.run(
            [sys.executable, "-c", COUNT_FAILURES, str(recorded)],
            cwd=ROOT,
            env=clean_env(
                DJANGO_SETTINGS_MODULE="webhooks_project.settings",
                DJANGO_SECRET_KEY=STRONG_KEY,
                CELERY_BROKER_URL=broker.url,
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "WAIT False" in process(6)  # 6 of the default 10 per minute
    assert "WAIT True" in process(4)  # 4 more, in another process: the budget is spent


# --- HTTPS ---------------------------------------------------------------------------------

HTTPS = (
    "import webhooks_project.settings as s; from django.conf import global_settings as g; "
    "print('HTTPS', *(getattr(s, name, getattr(g, name)) for name in ("
    "'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_SSL_REDIRECT', "
    "'SECURE_HSTS_SECONDS', 'SECURE_PROXY_SSL_HEADER')))"
)


def test_django_https_turns_on_secure_cookies_hsts_and_the_redirect():
    on = import_settings(
        HTTPS,
        DJANGO_SECRET_KEY=STRONG_KEY,
        DJANGO_HTTPS="1",
        DJANGO_SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
    )
    off = import_settings(HTTPS, DJANGO_SECRET_KEY=STRONG_KEY)

    assert on.returncode == 0 and off.returncode == 0, on.stderr + off.stderr
    assert "HTTPS True True True 31536000 ('HTTP_X_FORWARDED_PROTO', 'https')" in on.stdout
    assert "HTTPS False False False 0 None" in off.stdout  # local runs over plain HTTP


def test_a_malformed_proxy_ssl_header_names_the_variable():
    result = import_settings(
        HTTPS, DJANGO_SECRET_KEY=STRONG_KEY, DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto"
    )

    assert result.returncode != 0
    assert "DJANGO_SECURE_PROXY_SSL_HEADER" in result.stderr


# The production environment as README.md lists it.
PRODUCTION = {
    "DJANGO_SECRET_KEY": STRONG_KEY,
    "DJANGO_ALLOWED_HOSTS": "webhooks.example.com",
    "DJANGO_HTTPS": "1",
    "DATABASE_URL": "postgres://webhooks@db.internal:5432/webhooks",
    "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
    # A Fernet key (32 url-safe base64 bytes) for the values encrypted at rest.
    "WEBHOOKS_ENCRYPTION_KEYS": "q7AI5u0MQxq9cVIMbZYTVQpVYb2Ku9nfgQfRxoPEI0o=",
}


def check_deploy(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_silent_with_the_documented_production_environment():
    result = check_deploy(**PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_without_https_check_deploy_names_what_is_missing():
    result = check_deploy(**{k: v for k, v in PRODUCTION.items() if k != "DJANGO_HTTPS"})

    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stdout + result.stderr
