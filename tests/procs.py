"""Real processes for integration and fault tests: the helpers of devtools.processes (one module
for dev.py, the benchmarks and the tests), and a Celery worker on the test database."""

from __future__ import annotations

import json
import os

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
