"""System checks: each misconfiguration gives its stable id and names the setting to fix."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from contextlib import contextmanager

import pytest
from celery import Celery, _state
from django.core import checks
from django.test import override_settings

from deliveries.checks import check_celery
from deliveries.schedule import BEAT_SCHEDULE
from subscriptions.checks import check_webhooks_settings
from tests.procs import ROOT

BROKER = "redis://127.0.0.1:1/0"


def ids(messages) -> list[str]:
    return [message.id for message in messages]


@contextmanager
def host_celery_app(*, autodiscover: bool = True, name: str = "host"):
    """A host project's own Celery app, configured from Django settings, made current.

    Created inside the test's `override_settings`, so it reads the overridden settings as a
    host's app reads its own. The previous app is current again afterwards.
    """
    previous_current, previous_default = _state._tls.current_app, _state.default_app
    app = Celery(name)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    if autodiscover:
        app.autodiscover_tasks()
    try:
        yield app
    finally:
        _state._tls.current_app = previous_current
        _state.default_app = previous_default


@pytest.fixture(autouse=True)
def no_broker_in_environment(monkeypatch):
    # Celery prefers the CELERY_BROKER_URL environment variable over settings.
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)


# --- Celery ------------------------------------------------------------------------------------


@override_settings(CELERY_BROKER_URL=BROKER, CELERY_BEAT_SCHEDULE=BEAT_SCHEDULE)
def test_a_correct_host_app_passes():
    with host_celery_app():
        assert check_celery() == []


@override_settings(CELERY_BROKER_URL=None, CELERY_BEAT_SCHEDULE=BEAT_SCHEDULE)
def test_no_broker_is_e001_naming_celery_broker_url():
    with host_celery_app():
        messages = check_celery()

    assert ids(messages) == ["webhooks.E001"]
    assert messages[0].level == checks.ERROR
    assert "CELERY_BROKER_URL" in messages[0].hint


@override_settings(
    CELERY_BROKER_URL=None, CELERY_BEAT_SCHEDULE=BEAT_SCHEDULE, CELERY_TASK_ALWAYS_EAGER=True
)
def test_eager_mode_needs_no_broker():
    with host_celery_app():
        assert check_celery() == []


@override_settings(CELERY_BROKER_URL=BROKER, CELERY_BEAT_SCHEDULE=BEAT_SCHEDULE)
def test_app_that_does_not_autodiscover_is_e003():
    with host_celery_app(autodiscover=False):
        messages = check_celery()

    assert ids(messages) == ["webhooks.E003"]
    assert "autodiscover_tasks" in messages[0].hint
    assert "CELERY_IMPORTS" in messages[0].hint


@override_settings(
    CELERY_BROKER_URL=BROKER,
    CELERY_BEAT_SCHEDULE=BEAT_SCHEDULE,
    CELERY_IMPORTS=["deliveries.tasks"],
)
def test_app_that_imports_the_tasks_module_explicitly_passes():
    with host_celery_app(autodiscover=False):
        assert check_celery() == []


@override_settings(CELERY_BROKER_URL=BROKER, CELERY_BEAT_SCHEDULE=BEAT_SCHEDULE)
def test_autodiscovery_of_other_packages_only_is_e003():
    with host_celery_app(autodiscover=False) as app:
        app.autodiscover_tasks(["billing"])
        assert ids(check_celery()) == ["webhooks.E003"]


@pytest.mark.parametrize(
    "schedule",
    [
        None,
        {},
        {"mine": {"task": "billing.tasks.invoice", "schedule": 60.0}},
        {k: v for k, v in BEAT_SCHEDULE.items() if k != "webhooks-sweep"},
    ],
    ids=["unset", "empty", "only-host-entries", "sweep-missing"],
)
def test_beat_schedule_without_our_tasks_is_e004(schedule):
    with (
        override_settings(CELERY_BROKER_URL=BROKER, CELERY_BEAT_SCHEDULE=schedule),
        host_celery_app(),
    ):
        messages = check_celery()

    assert ids(messages) == ["webhooks.E004"]
    assert "deliveries.tasks.sweep" in messages[0].msg
    assert "CELERY_BEAT_SCHEDULE" in messages[0].hint


def test_beat_entries_may_be_renamed_and_mixed_with_the_hosts():
    renamed = {f"my-{name}": entry for name, entry in BEAT_SCHEDULE.items()}
    schedule = {**renamed, "mine": {"task": "billing.tasks.invoice", "schedule": 60.0}}
    with (
        override_settings(CELERY_BROKER_URL=BROKER, CELERY_BEAT_SCHEDULE=schedule),
        host_celery_app(),
    ):
        assert check_celery() == []


def test_checks_are_registered_and_run_by_manage_py_check():
    registered = checks.registry.registry.get_checks()

    assert check_celery in registered
    assert check_webhooks_settings in registered
    with override_settings(WEBHOOKS={"RETRY_SHEDULE": [0]}):
        assert "webhooks.E006" in ids(checks.run_checks())


def run_check(tmp_path, project_code: str) -> subprocess.CompletedProcess:
    """`django-admin check` in a separate process, for a minimal host project."""
    (tmp_path / "hostproj").mkdir()
    (tmp_path / "hostproj" / "__init__.py").write_text(textwrap.dedent(project_code))
    (tmp_path / "hostproj" / "settings.py").write_text(
        textwrap.dedent(
            """
            SECRET_KEY = "x"
            INSTALLED_APPS = [
                "django.contrib.auth", "django.contrib.contenttypes",
                "rest_framework", "django_celery_beat", "subscriptions", "deliveries",
            ]
            DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
            CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
            from deliveries.schedule import BEAT_SCHEDULE
            CELERY_BEAT_SCHEDULE = BEAT_SCHEDULE
            """
        )
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CELERY", "DJANGO", "WEBHOOKS"))
    }
    env.update(
        PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}", DJANGO_SETTINGS_MODULE="hostproj.settings"
    )
    return subprocess.run(
        [sys.executable, "-m", "django", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_project_without_a_celery_app_is_e002(tmp_path):
    result = run_check(tmp_path, "")

    assert result.returncode == 1
    assert "webhooks.E002" in result.stderr
    assert "celery.py" in result.stderr


def test_project_loading_its_celery_app_passes(tmp_path):
    result = run_check(
        tmp_path,
        """
        from celery import Celery

        app = Celery("hostproj")
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.autodiscover_tasks()
        """,
    )

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


# --- WEBHOOKS ----------------------------------------------------------------------------------


def webhooks_messages(**webhooks):
    with override_settings(WEBHOOKS=webhooks):
        return check_webhooks_settings()


def test_valid_webhooks_settings_pass():
    assert (
        webhooks_messages(
            RETRY_SCHEDULE=[0, 1.5, 60],
            TIMEOUT=10,
            CONNECT_TIMEOUT=2,
            MAX_COUNTDOWN=None,
            BATCH_SIZE=10,
            DELIVERY_QUEUE="hooks",
        )
        == []
    )


def test_webhooks_not_a_dict_is_e005():
    with override_settings(WEBHOOKS=[("TIMEOUT", 5)]):
        messages = check_webhooks_settings()

    assert ids(messages) == ["webhooks.E005"]


def test_unknown_key_is_e006_with_a_suggestion():
    messages = webhooks_messages(RETRY_SHEDULE=[0, 5])

    assert ids(messages) == ["webhooks.E006"]
    assert "'RETRY_SHEDULE'" in messages[0].msg
    assert "RETRY_SCHEDULE" in messages[0].hint


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("RETRY_SCHEDULE", []),
        ("RETRY_SCHEDULE", [0, -5]),
        ("RETRY_SCHEDULE", "0,5,300"),
        ("RETRY_SCHEDULE", [0, "5"]),
        ("RETRY_SCHEDULE", [0, True]),
        ("TIMEOUT", 0),
        ("TIMEOUT", "15"),
        ("CONNECT_TIMEOUT", -1),
        ("MAX_RESPONSE_BODY_BYTES", 1.5),
        ("MAX_PAYLOAD_BYTES", 0),
        ("MAX_PAYLOAD_DEPTH", 0),
        ("MAX_PAYLOAD_DEPTH", 129),
        ("PAGE_SIZE", 0),
        ("MAX_PAGE_SIZE", "1000"),
        ("ALLOW_HTTP", "yes"),
        ("ALLOW_PRIVATE_NETWORKS", 1),
        ("RETENTION_DAYS", None),
        ("MAX_COUNTDOWN", 0),
        ("BATCH_SIZE", 0),
        ("DELIVERY_QUEUE", ""),
        ("RETRY_JITTER", -0.1),
        ("CA_BUNDLE", "/nonexistent/ca.pem"),
        ("CA_BUNDLE", False),
    ],
)
def test_wrong_type_or_value_is_e007_naming_the_key(key, value):
    messages = webhooks_messages(**{key: value})

    assert ids(messages) == ["webhooks.E007"]
    assert f"WEBHOOKS[{key!r}]" in messages[0].msg
    assert f"WEBHOOKS[{key!r}]" in messages[0].hint


def test_connect_timeout_longer_than_total_is_e008():
    messages = webhooks_messages(CONNECT_TIMEOUT=20, TIMEOUT=10)

    assert ids(messages) == ["webhooks.E008"]


@override_settings(CELERY_BROKER_TRANSPORT_OPTIONS={"visibility_timeout": 600})
def test_max_countdown_beyond_visibility_timeout_is_e009():
    assert ids(webhooks_messages(MAX_COUNTDOWN=600)) == ["webhooks.E009"]
    assert webhooks_messages(MAX_COUNTDOWN=300) == []


@pytest.mark.parametrize(
    ("key", "check_id"), [("ALLOW_PRIVATE_NETWORKS", "webhooks.W001"), ("ALLOW_HTTP", "W002")]
)
def test_unsafe_switches_warn_only_without_debug(key, check_id):
    with override_settings(DEBUG=False):
        production = webhooks_messages(**{key: True})
        off = webhooks_messages(**{key: False})
    with override_settings(DEBUG=True):
        development = webhooks_messages(**{key: True})

    assert [m.id.split(".")[-1] for m in production] == [check_id.split(".")[-1]]
    assert production[0].level == checks.WARNING
    assert f"WEBHOOKS[{key!r}]" in production[0].hint
    assert off == development == []
