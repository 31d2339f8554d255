#!/usr/bin/env python3
"""Run the whole system, or its tests, from a fresh checkout with nothing but Python 3.11+.

    python3 dev.py up        # web, workers (one per core) and beat under honcho: SQLite, Redis
    python3 dev.py test      # ruff, migrations check, mypy, the suite on SQLite and PostgreSQL
    python3 dev.py receiver  # a local receiver that prints and verifies deliveries

Both create `.venv` and install the requirements on first use. Only the standard library is
used until the virtual environment exists.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from devtools.processes import QUEUES, ROOT, redis_binary, redis_command, worker_command
from devtools.processes import reachable as listening

VENV = ROOT / ".venv"
VAR = ROOT / "var"
PY = VENV / "bin" / "python"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/webhooks"


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def run(cmd: list[str], **kwargs) -> None:
    subprocess.run(cmd, check=True, cwd=ROOT, **kwargs)


# --- environment --------------------------------------------------------------------------


def ensure_venv(requirements: str) -> None:
    """Create .venv and install `requirements` when they changed since the last install."""
    if not PY.exists():
        say("creating .venv")
        run([sys.executable, "-m", "venv", str(VENV)])
    stamp = VENV / f".installed-{requirements}"
    wanted = (ROOT / requirements).read_text() + (ROOT / "requirements.txt").read_text()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    say(f"installing {requirements} into .venv (first run takes a minute)")
    run([str(PY), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", requirements])
    stamp.write_text(wanted)


def reachable(url: str, default_port: int) -> bool:
    """Whether the server of `url` accepts TCP connections."""
    parts = urlsplit(url)
    return listening(parts.hostname or "127.0.0.1", parts.port or default_port)


def apt_install(*packages: str) -> bool:
    if not shutil.which("apt-get") or os.geteuid() != 0:
        return False
    say(f"installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    return (
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", *packages], check=False, env=env
        ).returncode
        == 0
    )


def ensure_redis_binary() -> None:
    """The tests start their own redis-server processes, so they need the binary."""
    if redis_binary():
        return
    if not apt_install("redis-server"):
        sys.exit(
            "redis-server is needed for the tests; install it (e.g. apt-get install redis-server)."
        )


def start_local_redis(port: int = 6379) -> str | None:
    """Start a redis-server on loopback for `up` if the binary exists; None otherwise. It
    daemonizes (its pid in var/redis.pid), so it outlives this command and honcho."""
    if not redis_binary():
        return None
    VAR.mkdir(exist_ok=True)
    daemon = ["--daemonize", "yes", "--dir", str(VAR), "--pidfile", str(VAR / "redis.pid")]
    command = redis_command(port, *daemon, "--logfile", str(VAR / "redis.log"))
    subprocess.run(command, check=False)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(50):
        if reachable(url, port):
            return url
        time.sleep(0.1)
    return None


def can_connect(url: str) -> bool:
    """Whether `url`'s server lets us into its maintenance database `postgres`."""
    maintenance = url.rsplit("/", 1)[0] + "/postgres"
    code = f"import psycopg; psycopg.connect({maintenance!r}, connect_timeout=5).close()"
    return subprocess.run([str(PY), "-c", code], capture_output=True).returncode == 0


def ensure_postgres(url: str) -> str | None:
    """Return a PostgreSQL URL the tests can use, starting or installing the server when allowed.

    The tests create their databases themselves (pytest-django `test_<name>`, the embedding
    test through the maintenance database), so only a role that may create databases is needed.
    """
    if not reachable(url, 5432):
        clusters = Path("/etc/postgresql")
        if not clusters.exists():
            apt_install("postgresql")
        if clusters.exists() and shutil.which("pg_ctlcluster"):
            for version in sorted(os.listdir(clusters)):
                subprocess.run(
                    ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                    check=False,
                )
            for _ in range(50):
                if reachable(url, 5432):
                    break
                time.sleep(0.2)
    if not reachable(url, 5432):
        return None
    if can_connect(url):
        return url
    return own_role_url(url)


TEST_ROLE = "webhooks_dev"


def own_role_url(url: str) -> str | None:
    """`url` with a role of our own: a freshly installed server refuses password-less TCP
    logins, and the password of its `postgres` role (or any role we did not create) is not ours
    to change. As the `postgres` system user, through the local socket, create (or give a new
    password to) the role `webhooks_dev`, allowed to create databases; its password is kept in
    var/. None, with a hint, when that is not possible (not root, no `su`)."""
    VAR.mkdir(exist_ok=True)
    secret = VAR / "postgres-test-role.txt"
    password = private_value(secret, lambda: secrets.token_urlsafe(16))
    # Sent on stdin: nothing to quote for a shell, and the password stays out of `ps`.
    sql = (
        f"SELECT 'CREATE ROLE {TEST_ROLE}' WHERE NOT EXISTS "
        f"(SELECT FROM pg_roles WHERE rolname = '{TEST_ROLE}')\\gexec\n"
        f"ALTER ROLE {TEST_ROLE} WITH LOGIN CREATEDB PASSWORD '{password}';\n"
    )
    if not shutil.which("su") or os.geteuid() != 0:
        say(
            "PostgreSQL refuses password-less logins; set TEST_DATABASE_URL to a URL with a "
            "role that may create databases, e.g. postgres://USER:PASSWORD@127.0.0.1:5432/webhooks"
        )
        return None
    done = subprocess.run(
        ["su", "postgres", "-c", "psql -q -v ON_ERROR_STOP=1 -d postgres"],
        input=sql,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    parts = urlsplit(url)
    netloc = f"{TEST_ROLE}:{password}@{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"
    return parts._replace(netloc=netloc).geturl()


# --- up -----------------------------------------------------------------------------------


def private_value(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in `path`, made by `make()` the first time. The file is readable by its
    owner only (mode 0600), created so and tightened if an older run left it wider: another
    account on the machine must not read the admin's password or the signing key."""
    path.parent.mkdir(exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(make())
    path.chmod(0o600)
    return path.read_text().strip()


def admin_password() -> str:
    return private_value(VAR / "admin-password.txt", lambda: secrets.token_urlsafe(12))


def procfile(python: str, port: int, threads: int) -> str:
    """The processes of `up`, for honcho: the Django development server, a worker (scaled to
    one process per core by honcho's `-c worker=N`, as the Procfile's worker line is) and beat.
    honcho gives each process its own $PORT, which names the worker nodes apart."""
    worker = worker_command(
        "threads", threads, QUEUES, "info", name="worker-$PORT@%h", python=python, heartbeat=True
    )
    celery = f"{python} -m celery -A webhooks_project"
    return "\n".join(
        [
            f"web: {python} manage.py runserver 127.0.0.1:{port} --noreload",
            f"worker: {' '.join(worker)}",
            f"beat: {celery} beat -l info -s {VAR / 'celerybeat-schedule'}",
            "",
        ]
    )


def banner(port: int, password: str, workers: int, threads: int) -> list[str]:
    base = f"http://127.0.0.1:{port}"
    return [
        f"admin: {base}/admin/  user: admin  password: {password}",
        f"API:   {base}/api/  (docs: {base}/api/docs/, schema: {base}/api/schema/)",
        f"workers: {workers} process(es), one per core, {threads} threads each; "
        "web, worker and beat run under honcho; Ctrl-C stops them all",
        "another port: python3 dev.py up --port 8001; another Redis: "
        "python3 dev.py up --redis redis://HOST:6380/0 (or set CELERY_BROKER_URL)",
    ]


def dev_secret_key() -> str:
    """A key for local runs, generated once and kept in var/ (the settings refuse to start
    without DJANGO_SECRET_KEY unless DJANGO_DEBUG is on)."""
    return private_value(VAR / "secret-key.txt", lambda: secrets.token_urlsafe(50))


def cmd_up(args: argparse.Namespace) -> None:
    ensure_venv("requirements.txt")
    VAR.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webhooks_project.settings",
        "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG", "1"),
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or dev_secret_key(),
        # The demo delivers to receivers on this machine over plain http.
        "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": os.environ.get("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", "1"),
        "WEBHOOKS_ALLOW_HTTP": os.environ.get("WEBHOOKS_ALLOW_HTTP", "1"),
        "PYTHONUNBUFFERED": "1",
    }
    broker = args.redis or env.get("CELERY_BROKER_URL", DEFAULT_REDIS)
    if broker.startswith("redis") and not reachable(broker, 6379):
        started = start_local_redis() if broker == DEFAULT_REDIS else None
        if started:
            say(f"broker: started a local redis-server at {started}")
            broker = started
        else:
            broker = "filesystem://"
            say(
                "broker: no Redis reachable; using Kombu's filesystem broker in var/broker "
                "(fine for a demo: in-flight caps are off without a Redis; use Redis or "
                "RabbitMQ with WEBHOOKS_REDIS_URL for anything else)"
            )
    else:
        say(f"broker: {broker}")
    env["CELERY_BROKER_URL"] = broker
    database = env.get("DATABASE_URL", f"sqlite:///{VAR / 'db.sqlite3'}")
    say(f"database: {database}")
    manage = [str(PY), "manage.py"]
    run([*manage, "migrate", "--noinput", "-v", "0"], env=env)
    password = admin_password()
    run(
        [
            *manage,
            "shell",
            "--no-imports",
            "-c",
            "from django.contrib.auth import get_user_model; U = get_user_model(); "
            "u = U.objects.filter(username='admin').first() or U(username='admin'); "
            "u.is_staff = u.is_superuser = True; "
            f"u.set_password({password!r}); u.save()",
        ],
        env=env,
    )
    workers = args.workers or os.cpu_count() or 1
    threads = 16
    procs = VAR / "Procfile.dev"
    procs.write_text(procfile(str(PY), args.port, threads))
    for line in banner(args.port, password, workers, threads):
        say(line)
    # honcho prefixes each line with the process name, stops the others when one exits and
    # forwards Ctrl-C to all of them.
    honcho = [str(PY), "-m", "honcho", "-f", str(procs), "-d", str(ROOT)]
    os.execve(str(PY), [*honcho, "start", "-c", f"worker={workers}"], env)


# --- test ---------------------------------------------------------------------------------


def cmd_test(args: argparse.Namespace) -> None:
    ensure_venv("requirements-dev.txt")
    ensure_redis_binary()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL", None)
    say("ruff")
    run([str(PY), "-m", "ruff", "check", "."])
    say("migrations are complete")
    reference_env = {
        **env,
        "DJANGO_SETTINGS_MODULE": "webhooks_project.settings",
        "DJANGO_SECRET_KEY": env.get("DJANGO_SECRET_KEY") or dev_secret_key(),
    }
    run([str(PY), "manage.py", "makemigrations", "--check", "--dry-run"], env=reference_env)
    say("published event versions are unbroken")
    run([str(PY), "manage.py", "webhooks_contracts", "--check"], env=reference_env)
    say("type check (mypy with django-stubs, configured in pyproject.toml)")
    run([str(PY), "-m", "mypy"], env={**env, "DJANGO_SETTINGS_MODULE": "tests.settings"})
    pytest = [str(PY), "-m", "pytest", *args.pytest_args]
    failed: list[str] = []
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    if not args.postgres_only:
        say("test suite on SQLite")
        if run_pytest(pytest, env, totals):
            failed.append("SQLite")
    if not args.sqlite_only:
        pg = ensure_postgres(os.environ.get("TEST_DATABASE_URL", DEFAULT_PG))
        if pg is None:
            if args.require_postgres:
                sys.exit("PostgreSQL is required (--require-postgres) but could not be started.")
            say("PostgreSQL not reachable: skipped the PostgreSQL run")
        else:
            say(f"test suite on PostgreSQL ({pg})")
            if run_pytest(pytest, {**env, "DATABASE_URL": pg}, totals):
                failed.append("PostgreSQL")
    say("all green" if not failed else f"tests failed on: {', '.join(failed)}")
    # One closing line over both runs, in the plain form CI tools read.
    print(
        f"total: {totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped"
    )
    if failed:
        sys.exit(1)


def run_pytest(cmd: list[str], env: dict[str, str], totals: dict[str, int]) -> int:
    """Run pytest, echoing its output, and add its summary counts to `totals`."""
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    summary = ""
    assert proc.stdout is not None  # stdout=PIPE
    for line in proc.stdout:
        sys.stdout.write(line)
        if re.match(r"^=*\s*\d+ (passed|failed|errors?|skipped|deselected)\b.* in [\d.]+s", line):
            summary = line
    code = proc.wait()
    for count, word in re.findall(r"(\d+) (passed|failed|errors?|skipped)", summary):
        key = "failed" if word.startswith("error") else word
        totals[key] += int(count)
    if code == 5:  # pytest: no tests collected
        return 1
    return code


# --- receiver -----------------------------------------------------------------------------


def cmd_receiver(argv: list[str]) -> None:
    ensure_venv("requirements.txt")
    os.execv(str(PY), [str(PY), str(ROOT / "bin" / "demo_receiver.py"), *argv])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    up = sub.add_parser("up", help="run web, worker and beat")
    up.add_argument("--port", type=int, default=8000, help="of the web process (default 8000)")
    up.add_argument(
        "--redis", help="broker URL, e.g. redis://127.0.0.1:6380/0 (default: $CELERY_BROKER_URL)"
    )
    up.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    test = sub.add_parser("test", help="run ruff, the migrations check, mypy and the test suite")
    test.add_argument("--sqlite-only", action="store_true")
    test.add_argument("--postgres-only", action="store_true")
    test.add_argument(
        "--require-postgres",
        action="store_true",
        help="fail instead of skipping when PostgreSQL cannot be started",
    )
    test.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    sub.add_parser("receiver", help="print and verify deliveries on 127.0.0.1:9000 (--help)")
    if sys.argv[1:2] == ["receiver"]:
        cmd_receiver(sys.argv[2:])
        return
    args = parser.parse_args(sys.argv[1:] or ["up"])
    {"up": cmd_up, "test": cmd_test}[args.command](args)


if __name__ == "__main__":
    main()
