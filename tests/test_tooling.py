"""The development tooling: the demo's fallback broker, `dev.py up` and the test helpers."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.procs import ROOT


def test_the_filesystem_broker_writes_nothing_into_the_repository(tmp_path):
    # dev.py falls back to kombu's filesystem broker when no Redis is reachable. Its exchange
    # table defaults to ./control (wherever the process starts): the settings move it to var/.
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webhooks_project.settings",
        "CELERY_BROKER_URL": "filesystem://",
        "PYTHONPATH": str(ROOT),
    }
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from deliveries import dispatch\n"
        "from celery import current_app\n"
        "assert dispatch.enqueue_attempts([(1, 1), (2, 2)]) == 2\n"
        "with current_app.connection_for_write() as conn:\n"
        "    for queue in ('webhooks', 'webhooks.retry'):\n"
        "        conn.default_channel.queue_purge(queue)\n"
        "print(settings.CELERY_BROKER_TRANSPORT_OPTIONS['control_folder'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    control = result.stdout.strip().splitlines()[-1]
    assert control.startswith(str(ROOT / "var"))
    assert {p.name for p in (ROOT / "var" / "broker" / "control").iterdir()} >= {
        "webhooks.exchange",
        "webhooks.retry.exchange",
    }
    assert list(tmp_path.iterdir()) == []
    tracked = subprocess.run(
        ["git", "ls-files", "control"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    assert not (ROOT / "control").exists() and tracked == ""


def test_unit_tests_start_no_redis_and_broker_tests_start_one_lazily(tmp_path):
    # With no redis-server to run, tests that need no broker pass: none was started for them.
    # The inner runs use a SQLite database of their own, never this run's.
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(REDIS_SERVER="/nonexistent/redis-server", SQLITE_TEST_NAME=str(tmp_path / "t.db"))

    def pytest(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    unit = pytest("tests/test_signing.py", "tests/test_states.py")
    needs_broker = pytest(
        "tests/test_performance.py::test_enqueue_with_the_broker_down_returns_without_raising"
    )

    assert unit.returncode == 0, unit.stdout[-3000:]
    assert needs_broker.returncode != 0
    assert "redis-server not found (/nonexistent/redis-server)" in needs_broker.stdout
