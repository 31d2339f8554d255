"""Real processes for integration and fault tests: the helpers of devtools.processes (one module
for dev.py, the benchmarks and the tests), and a Celery worker on the test database."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess

from devtools.processes import (  # noqa: F401 - the tests' names for the shared helpers
    QUEUES,
    ROOT,
    Process,
    RedisServer,
    free_port,
    wait_until,
)
from devtools.processes import Worker as CeleryWorker


class Worker(CeleryWorker):
    """A Celery worker in its own process on the test database and a given broker, with
    `overrides` merged into WEBHOOKS by the test settings."""

    def __init__(
        self,
        broker_url: str,
        database_url: str,
        *,
        pool: str = "threads",
        concurrency: int = 4,
        queues: str = QUEUES,
        overrides: dict | None = None,
        extra_env: dict | None = None,
        settings_module: str = "tests.settings",
        beat: bool = False,
    ) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings_module,
            "CELERY_BROKER_URL": broker_url,
            "DATABASE_URL": database_url,
            "WEBHOOKS_OVERRIDES": json.dumps(overrides or {}),
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        super().__init__(env=env, pool=pool, concurrency=concurrency, queues=queues, name="test")
        if beat:
            self.args += ["-B", "-s", str(self.log.with_suffix(".beat"))]


RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672


def rabbitmq_reachable() -> bool:
    """Whether a RabbitMQ listens on 127.0.0.1:5672 and `rabbitmqctl` can manage it."""
    if shutil.which("rabbitmqctl") is None:
        return False
    try:
        with socket.create_connection((RABBITMQ_HOST, RABBITMQ_PORT), timeout=1):
            return True
    except OSError:
        return False


class RabbitVhost:
    """A vhost of its own on the shared RabbitMQ (guest/guest), created for one test run and
    deleted afterwards, so no message of another run or another engineer is ever seen."""

    def __init__(self) -> None:
        self.name = f"webhooks-test-{os.getpid()}-{free_port()}"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{self.name}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)

    def create(self) -> RabbitVhost:
        self._ctl("add_vhost", self.name)
        self._ctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        return self

    def delete(self) -> None:
        self._ctl("delete_vhost", self.name)


def database_url_for_tests() -> str:
    """The URL of the database pytest-django created, for processes started by the tests."""
    from django.db import connection

    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or ""
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings['NAME']}"
