"""Real processes for integration and fault tests: a private redis-server and Celery workers.

Each is started on a free loopback port or with its own log file and stopped by its own pid,
never by name, so nothing else on the machine is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def redis_binary() -> str:
    """The redis-server to run: $REDIS_SERVER if set, else the one on PATH."""
    path = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(path):
        raise RuntimeError(f"redis-server not found ({path}); `python dev.py test` installs it.")
    return path


class RedisServer:
    """A throwaway redis-server with no persistence (a restart loses every message)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.logfile = Path(tempfile.mkstemp(prefix="redis-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                redis_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxmemory-policy",
                "noeviction",
                "--logfile",
                str(self.logfile),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_until(self.ping, timeout=10):
            raise RuntimeError(f"redis-server did not start on port {self.port}")
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def worker_command(
    pool: str, concurrency: int, queues: str, loglevel: str, *, name: str, extra: tuple = ()
) -> list[str]:
    """`celery worker` for the reference project, quiet on the cluster chatter tests don't use."""
    return [
        sys.executable, "-m", "celery", "-A", "webhooks_project", "worker",
        "-P", pool, "-c", str(concurrency), "-Q", queues, "-l", loglevel, *extra,
        "--without-heartbeat", "--without-gossip", "--without-mingle", "-n", name,
    ]  # fmt: skip


class Worker:
    """`celery worker` in its own process, using the test database and a given broker."""

    def __init__(
        self,
        broker_url: str,
        database_url: str,
        *,
        pool: str = "threads",
        concurrency: int = 4,
        queues: str = "webhooks,webhooks.retry,webhooks.maintenance",
        overrides: dict | None = None,
        extra_env: dict | None = None,
        settings_module: str = "tests.settings",
        beat: bool = False,
    ) -> None:
        self.log = Path(tempfile.mkstemp(prefix="worker-", suffix=".log")[1])
        self.args = worker_command(
            pool, concurrency, queues, "info", name=f"test-{os.getpid()}-{free_port()}@%h"
        )
        if beat:
            self.args += ["-B", "-s", str(self.log.with_suffix(".beat"))]
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings_module,
            "CELERY_BROKER_URL": broker_url,
            "DATABASE_URL": database_url,
            "WEBHOOKS_OVERRIDES": json.dumps(overrides or {}),
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> Worker:
        self._out = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not wait_until(
            lambda: b" ready." in self.log.read_bytes() or self.proc.poll() is not None,
            timeout=timeout,
        ):
            raise RuntimeError(f"worker not ready:\n{self.output()}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited:\n{self.output()}")
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def children(self) -> list[int]:
        """Pids of the pool's child processes (prefork pool)."""
        if not self.proc:
            return []
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True
        ).stdout
        return [int(pid) for pid in out.split()]

    def kill(self) -> None:
        """kill -9 the whole worker, children included: no chance to hand anything back."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "_out", None):
            self._out.close()


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
