"""The development tooling: the demo's fallback broker, `dev.py up` and the test helpers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request

import pytest

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

    unit = pytest("tests/test_signing.py", "tests/test_text.py")
    needs_broker = pytest(
        "tests/test_performance.py::test_enqueue_with_the_broker_down_returns_without_raising"
    )

    assert unit.returncode == 0, unit.stdout[-3000:]
    assert needs_broker.returncode != 0
    assert "redis-server not found (/nonexistent/redis-server)" in needs_broker.stdout


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_dev_up_runs_web_a_worker_per_core_and_beat_under_honcho(tmp_path, broker):
    from tests.procs import Process, free_port, wait_until

    port = free_port()
    log = tmp_path / "up.log"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    up = Process(
        [sys.executable, "dev.py", "up", "--port", str(port), "--redis", broker.url, "--workers",
         "2"],
        env=env, log=log,
    ).start()  # fmt: skip

    def api_root() -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/", timeout=2) as answer:
                return json.load(answer)
        except OSError:
            return None

    try:
        assert wait_until(lambda: api_root() is not None, timeout=120), log.read_text()
        # Both workers ready and beat started: the three start independently, in any order.
        assert wait_until(
            lambda: log.read_text().count(" ready.") >= 2 and "beat: Starting" in log.read_text(),
            timeout=60,
        ), log.read_text()
        text = log.read_text()
    finally:
        # Ctrl-C, as a developer stops it: honcho stops web, workers and beat.
        up.stop(signal.SIGINT, group=True, timeout=60)

    base = f"http://127.0.0.1:{port}"
    # Where everything is, and that each printed address answers.
    assert f"admin: {base}/admin/" in text
    assert f"API:   {base}/api/  (docs: {base}/api/docs/" in text
    assert "--port 8001" in text and "--redis redis://" in text
    # honcho's prefixes: two worker processes and beat.
    assert re.search(r"worker\.1 +\|.* ready\.", text) and re.search(
        r"worker\.2 +\|.* ready\.", text
    )
    assert re.search(r"beat\.1 +\|.*beat: Starting", text), text


def test_the_test_helper_creates_its_own_role_and_never_touches_the_postgres_role(
    tmp_path, monkeypatch
):
    # `dev.py test` on a fresh server that refuses password-less logins: it runs psql as the
    # postgres system user (here a fake `su` that records what it was given).
    import dev

    fake = tmp_path / "bin"
    fake.mkdir()
    record = tmp_path / "su.txt"
    (fake / "su").write_text(f'#!/bin/sh\necho "$@" > {record}\ncat >> {record}\n')
    (fake / "su").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(dev, "VAR", tmp_path / "var")
    monkeypatch.setattr(dev.os, "geteuid", lambda: 0)

    url = dev.own_role_url("postgres://postgres@127.0.0.1:5432/webhooks")

    password = (tmp_path / "var" / "postgres-test-role.txt").read_text().strip()
    assert url == f"postgres://webhooks_dev:{password}@127.0.0.1:5432/webhooks"
    sent = record.read_text()
    assert sent.startswith("postgres -c psql")
    assert "CREATE ROLE webhooks_dev" in sent and "CREATEDB" in sent
    statements = [line for line in sent.splitlines()[1:] if line.strip()]
    assert all("webhooks_dev" in line for line in statements)
    assert "ROLE postgres" not in sent and "USER postgres" not in sent
    # Run again (the role exists): the same password, kept in var/.
    assert dev.own_role_url("postgres://postgres@127.0.0.1:5432/webhooks") == url


def test_dev_up_keeps_its_secrets_readable_by_their_owner_only(tmp_path, monkeypatch):
    import stat

    import dev

    monkeypatch.setattr(dev, "VAR", tmp_path / "var")
    password = dev.admin_password()
    key_file = tmp_path / "var" / "secret-key.txt"
    key_file.parent.mkdir(exist_ok=True)
    key_file.write_text("an-older-run-left-it-0644")
    key_file.chmod(0o644)

    key = dev.dev_secret_key()

    for name in ("admin-password.txt", "secret-key.txt"):
        mode = stat.S_IMODE((tmp_path / "var" / name).stat().st_mode)
        assert mode == 0o600, f"{name}: {oct(mode)}"
    assert password and dev.admin_password() == password  # kept, not regenerated
    assert key == "an-older-run-left-it-0644"
