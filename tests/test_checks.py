"""System checks: each misconfiguration gives its stable id and names the setting to fix."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from contextlib import contextmanager

import pytest
from celery import Celery
from celery.app import app_or_default
from django.core import checks
from django.test import override_settings

from deliveries.checks import check_celery, check_pipeline_settings
from deliveries.schedule import BEAT_SCHEDULE, register_periodic_tasks
from subscriptions.checks import check_webhooks_settings
from tests.procs import ROOT
from webhooks_core.conf import DEFAULTS as REGISTRY_DEFAULTS
from webhooks_portal.checks import check_portal_settings

BROKER = "redis://127.0.0.1:1/0"


def ids(messages) -> list[str]:
    return [message.id for message in messages]


@contextmanager
def host_celery_app(*, autodiscover: bool = True, name: str = "host"):
    """A host project's own Celery app, configured from Django settings, made current.

    Created inside the test's `override_settings`, so it reads the overridden settings as a
    host's app reads its own. The previous app is current again afterwards.
    """
    previous = app_or_default()
    app = Celery(name)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    if autodiscover:
        app.autodiscover_tasks()
    try:
        yield app
    finally:
        previous.set_current()


@pytest.fixture(autouse=True)
def no_broker_in_environment(monkeypatch):
    # Celery prefers the CELERY_BROKER_URL environment variable over settings.
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)


# --- Celery ------------------------------------------------------------------------------------


@override_settings(CELERY_BROKER_URL=BROKER)
def test_a_correct_host_app_passes():
    with host_celery_app():
        assert check_celery() == []


@override_settings(CELERY_BROKER_URL=None)
def test_no_broker_is_a_warning_naming_celery_broker_url():
    with host_celery_app():
        messages = check_celery()

    assert ids(messages) == ["webhooks.W003"]
    assert messages[0].level == checks.WARNING
    assert "CELERY_BROKER_URL" in messages[0].hint


@override_settings(CELERY_BROKER_URL=None, CELERY_TASK_ALWAYS_EAGER=True)
def test_eager_mode_needs_no_broker():
    with host_celery_app():
        assert check_celery() == []


@override_settings(CELERY_BROKER_URL=BROKER)
def test_app_that_does_not_autodiscover_is_w005():
    with host_celery_app(autodiscover=False):
        messages = check_celery()

    assert ids(messages) == ["webhooks.W005"]
    assert messages[0].level == checks.WARNING
    assert "autodiscover_tasks" in messages[0].hint
    assert "CELERY_IMPORTS" in messages[0].hint


@override_settings(CELERY_BROKER_URL=BROKER, CELERY_IMPORTS=["deliveries.tasks"])
def test_app_that_imports_the_tasks_module_explicitly_passes():
    with host_celery_app(autodiscover=False):
        assert check_celery() == []


@override_settings(CELERY_BROKER_URL=BROKER)
def test_autodiscovery_of_other_packages_only_is_w005():
    with host_celery_app(autodiscover=False) as app:
        app.autodiscover_tasks(["billing"])
        assert ids(check_celery()) == ["webhooks.W005"]


@override_settings(CELERY_BROKER_URL=BROKER, CELERY_IMPORTS=["no_such_module.tasks"])
def test_task_modules_that_fail_to_import_are_w005_not_a_crash():
    with host_celery_app() as app:
        (message,) = check_celery()

    assert message.id == "webhooks.W005" and "ModuleNotFoundError" in message.msg
    assert app.main in message.msg


# --- Beat: the periodic tasks register themselves -------------------------------------------


@pytest.mark.parametrize(
    "schedule", [None, {}, {"mine": {"task": "billing.invoice", "schedule": 60}}]
)
def test_our_periodic_tasks_join_any_beat_schedule(schedule):
    with (
        override_settings(CELERY_BROKER_URL=BROKER, CELERY_BEAT_SCHEDULE=schedule),
        host_celery_app() as app,
    ):
        assert app.conf.broker_url == BROKER  # configured
        added = register_periodic_tasks(app)
        installed = app.conf.beat_schedule

    assert added == list(BEAT_SCHEDULE)
    for name, entry in BEAT_SCHEDULE.items():
        assert installed[name]["task"] == entry["task"]
        assert installed[name]["schedule"] == entry["schedule"]
        assert installed[name]["options"]["queue"] == "webhooks.maintenance"
    if schedule:
        assert installed["mine"]["task"] == "billing.invoice"
        assert set(schedule) == {"mine"}  # the host's settings dict is left as it was


def test_registration_waits_for_the_app_configuration():
    # An app not configured yet (Django started before the host's Celery module ran to its end).
    app = Celery("late", set_as_current=False)
    register_periodic_tasks(app)
    with override_settings(CELERY_BEAT_SCHEDULE={"mine": {"task": "x", "schedule": 5}}):
        app.config_from_object("django.conf:settings", namespace="CELERY")
        assert {"mine", *BEAT_SCHEDULE} <= set(app.conf.beat_schedule)


@override_settings(WEBHOOKS={"MAINTENANCE_QUEUE": "hooks.upkeep"})
def test_registered_entries_use_the_maintenance_queue_setting():
    with override_settings(CELERY_BROKER_URL=BROKER), host_celery_app() as app:
        register_periodic_tasks(app)
        queues = {entry["options"]["queue"] for entry in app.conf.beat_schedule.values()}

    assert queues == {"hooks.upkeep"}


def test_the_hosts_own_entries_for_our_tasks_are_kept():
    renamed = {f"my-{name}": {**entry, "schedule": 5.0} for name, entry in BEAT_SCHEDULE.items()}
    with (
        override_settings(CELERY_BROKER_URL=BROKER, CELERY_BEAT_SCHEDULE=renamed),
        host_celery_app() as app,
    ):
        assert register_periodic_tasks(app) == []
        assert app.conf.beat_schedule == renamed


def test_the_reference_projects_app_has_them_without_a_setting():
    from django.conf import settings

    from webhooks_project.celery import app

    assert not hasattr(settings, "CELERY_BEAT_SCHEDULE")
    assert {entry["task"] for entry in app.conf.beat_schedule.values()} >= {
        entry["task"] for entry in BEAT_SCHEDULE.values()
    }


def test_checks_are_registered_and_run_by_manage_py_check():
    registered = checks.registry.registry.get_checks()

    assert check_celery in registered
    assert check_webhooks_settings in registered and check_pipeline_settings in registered
    with override_settings(WEBHOOKS={"RETRY_SHEDULE": [0]}):
        assert "webhooks.E006" in ids(checks.run_checks())


def run_manage(tmp_path, project_code: str, *args: str) -> subprocess.CompletedProcess:
    """`django-admin <args>` in a separate process, for a minimal host project with the apps
    installed and nothing else configured for them."""
    if not (tmp_path / "hostproj").exists():
        (tmp_path / "hostproj").mkdir()
        (tmp_path / "hostproj" / "__init__.py").write_text(textwrap.dedent(project_code))
        (tmp_path / "hostproj" / "settings.py").write_text(
            textwrap.dedent(
                f"""
                SECRET_KEY = "x"
                INSTALLED_APPS = [
                    "django.contrib.auth", "django.contrib.contenttypes",
                    "rest_framework", "django_celery_beat", "subscriptions", "deliveries",
                ]
                DATABASES = {{
                    "default": {{
                        "ENGINE": "django.db.backends.sqlite3",
                        "NAME": "{tmp_path / "db.sqlite3"}",
                    }}
                }}
                USE_TZ = True
                """
            )
        )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CELERY", "DJANGO", "WEBHOOKS"))
    }
    env.update(
        PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}",
        DJANGO_SETTINGS_MODULE="hostproj.settings",
        CELERY_BROKER_URL="redis://127.0.0.1:1/0",
    )
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_project_without_a_celery_app_is_warned_and_still_migrates(tmp_path):
    checked = run_manage(tmp_path, "", "check")
    migrated = run_manage(tmp_path, "", "migrate", "-v", "0")

    assert checked.returncode == 0, checked.stderr
    assert "webhooks.W004" in checked.stderr
    assert "celery.py" in checked.stderr
    assert migrated.returncode == 0, migrated.stderr
    fatal = run_manage(tmp_path, "", "check", "--fail-level", "WARNING")
    assert fatal.returncode == 1 and "webhooks.W004" in fatal.stderr


def test_project_loading_its_celery_app_passes(tmp_path):
    result = run_manage(
        tmp_path,
        """
        from celery import Celery

        app = Celery("hostproj")
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.autodiscover_tasks()
        """,
        "check",
    )

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


# --- WEBHOOKS ----------------------------------------------------------------------------------


# A cache every process shares, as production has (nothing connects while checking).
SHARED_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/1",
    }
}


def webhooks_messages(**webhooks):
    with override_settings(WEBHOOKS=webhooks, CACHES=SHARED_CACHE):
        return check_webhooks_settings() + check_pipeline_settings() + check_portal_settings()


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
    ],
)
def test_budgets_in_a_process_local_cache_are_w018_without_debug(backend):
    local = {"default": {"BACKEND": backend}}
    with override_settings(DEBUG=False, CACHES=local, WEBHOOKS={}):
        production = check_webhooks_settings()
    with override_settings(DEBUG=True, CACHES=local, WEBHOOKS={}):
        development = check_webhooks_settings()
    unthrottled = {"THROTTLE_RATES": dict.fromkeys(REGISTRY_DEFAULTS["THROTTLE_RATES"])}
    with override_settings(DEBUG=False, CACHES=local, WEBHOOKS=unthrottled):
        nothing_counted = check_webhooks_settings()

    assert ids(production) == ["webhooks.W018"]
    assert "CACHES['default']" in production[0].hint
    assert development == nothing_counted == []
    assert webhooks_messages() == []  # a shared cache: nothing to say


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
        ("PORTAL_LINK_MAX_AGE", 0),
        ("PORTAL_SESSION_AGE", "3600"),
        ("PORTAL_FRAME_ANCESTORS", ["'self'; script-src *"]),
        ("TRUSTED_PROXIES", -1),
        ("TRUSTED_PROXIES", "10.0.0.0/8"),
        ("TRUSTED_PROXIES", ["10.0.0.0/8", "not-a-network"]),
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
        assert webhooks_messages(TRUSTED_PROXIES=2) == []
        assert webhooks_messages(TRUSTED_PROXIES=["10.0.0.0/8", "2001:db8::/32"]) == []
        off = webhooks_messages(**{key: False})
    with override_settings(DEBUG=True):
        development = webhooks_messages(**{key: True})

    assert [m.id.split(".")[-1] for m in production] == [check_id.split(".")[-1]]
    assert production[0].level == checks.WARNING
    assert f"WEBHOOKS[{key!r}]" in production[0].hint
    assert off == development == []


def test_the_portal_owns_and_checks_its_keys():
    from webhooks_core.conf import webhook_settings as registry
    from webhooks_portal.conf import webhook_settings as portal

    registered = checks.registry.registry.get_checks()
    assert check_portal_settings in registered  # by PortalConfig.ready()
    with override_settings(WEBHOOKS={"PORTAL_SESSION_AGE": 60}, CACHES=SHARED_CACHE):
        assert portal.PORTAL_SESSION_AGE == 60
        assert check_webhooks_settings() == []  # a known key: the portal's count
        with pytest.raises(AttributeError):
            registry.PORTAL_SESSION_AGE  # noqa: B018 - the registry owns no portal key
    assert ids(webhooks_messages(PORTAL_SESION_AGE=60)) == ["webhooks.E006"]


def test_each_app_reads_only_its_own_keys_of_the_one_dict():
    from deliveries.conf import webhook_settings as pipeline
    from webhooks_core.conf import webhook_settings as registry

    with override_settings(WEBHOOKS={"TIMEOUT": 7, "ALLOW_HTTP": True}):
        assert (pipeline.TIMEOUT, registry.ALLOW_HTTP) == (7, True)
        with pytest.raises(AttributeError):
            registry.TIMEOUT  # noqa: B018 - the registry owns no pipeline key
        with pytest.raises(AttributeError):
            pipeline.ALLOW_HTTP  # noqa: B018
    assert pipeline.TIMEOUT == 3  # the test settings', again once the override ends


def test_without_a_redis_for_the_counters_the_system_check_errors(settings):
    """webhooks.E030: with RabbitMQ and no REDIS_URL the caps could not hold."""
    from deliveries.checks import check_pipeline_settings
    from webhooks_project.celery import app

    before = app.conf.broker_url
    try:
        app.conf.broker_url = "amqp://guest:guest@127.0.0.1:5672//"
        with override_settings(WEBHOOKS={**settings.WEBHOOKS, "REDIS_URL": None}):
            ids = [message.id for message in check_pipeline_settings()]
            assert "webhooks.E030" in ids
        with override_settings(
            WEBHOOKS={**settings.WEBHOOKS, "REDIS_URL": "redis://127.0.0.1:6379/2"}
        ):
            assert "webhooks.E030" not in [m.id for m in check_pipeline_settings()]
    finally:
        app.conf.broker_url = before
    # A Redis broker holds the counters itself.
    assert "webhooks.E030" not in [m.id for m in check_pipeline_settings()]


def test_settings_naming_a_module_of_the_previous_layout_are_an_error():
    from django.conf import settings

    from subscriptions.checks import check_moved_paths

    old_backend = "subscriptions.authentication.FailedLoginBackend"
    with override_settings(
        AUTHENTICATION_BACKENDS=[old_backend],
        WEBHOOKS={
            **settings.WEBHOOKS,
            "TENANT_RESOLVER": "subscriptions.tenancy.tenant_from_groups",
        },
    ):
        found = {(m.id, m.hint) for m in check_moved_paths()}
    assert found == {
        (
            "webhooks.E040",
            "Use 'webhooks_core.authentication.FailedLoginBackend' "
            "(docs/embedding.md, 'Upgrading').",
        ),
        (
            "webhooks.E040",
            "Use 'webhooks_core.tenancy.tenant_from_groups' (docs/embedding.md, 'Upgrading').",
        ),
    }
    # Today's settings (the reference project's) name no old path; a host's own module whose
    # name merely starts the same way is none of ours.
    assert check_moved_paths() == []
    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, "subscriptions_extra.Middleware"]):
        assert [m for m in check_moved_paths() if m.id == "webhooks.E040"] == []


def test_a_root_urlconf_mounting_the_old_api_root_is_an_error(tmp_path, monkeypatch):
    from subscriptions.checks import check_moved_paths

    (tmp_path / "old_layout_urls.py").write_text(
        "from django.urls import include, path\n"
        'urlpatterns = [path("api/", include("deliveries.urls"))]\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with override_settings(ROOT_URLCONF="old_layout_urls"):
        assert [m.id for m in check_moved_paths()] == ["webhooks.E041"]
    assert [m.id for m in check_moved_paths()] == []  # the reference URLconf
