"""Embedding: the wheel, installed into a clean virtualenv, inside a fresh `startproject`.

The host project is built from the code blocks of docs/embedding.md (so the guide cannot drift
from what works): the apps in INSTALLED_APPS, one URL include and a Celery app, nothing else
(the broker URL comes from the environment). `check`, `migrate` and `makemigrations --check`
pass as they are; the schema and the docs page answer; beat, started with its defaults, has the
sweep scheduled; a worker from that virtualenv delivers a published event to a real receiver on
127.0.0.1, and the receiver toolkit from the wheel verifies it. The host has its own user model
and its own app labelled `subscriptions`. Everything is created under pytest's temporary
directory (pip's cache included) and removed with it; on PostgreSQL, a database of its own,
created from the server's maintenance database `postgres`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.procs import ROOT, Process, wait_until

pytestmark = [pytest.mark.embedding, pytest.mark.timeout(420)]

PACKAGES = ("webhooks_core", "subscriptions", "deliveries", "webhooks_portal", "webhooks_receiver")
# Files that do not exist in the apps yet: the build must still pick such files up.
PROBES = (
    "deliveries/templates/deliveries/embedding_probe.html",
    "subscriptions/static/subscriptions/embedding/probe.css",
)


def docs_block(name: str) -> str:
    """The code block that follows `<!-- embedding-test: name -->` in docs/embedding.md."""
    text = (ROOT / "docs" / "embedding.md").read_text()
    match = re.search(
        rf"<!-- embedding-test: {re.escape(name)} -->\s*```python\n(.*?)```", text, re.DOTALL
    )
    assert match, f"docs/embedding.md has no block marked {name!r}"
    return match.group(1)


def run(args: list, *, cwd: Path, env: dict, timeout: float = 180) -> str:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """`python -m build --wheel` on a copy of the sources, so the tree gets no build/ dirs."""
    src = tmp_path_factory.mktemp("src")
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copytree(ROOT / "docs", src / "docs")
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    for probe in PROBES:
        (src / probe).parent.mkdir(parents=True, exist_ok=True)
        (src / probe).write_text("/* packaged */\n")
    out = tmp_path_factory.mktemp("dist")
    env = {**os.environ, "PIP_CACHE_DIR": str(out / "pip-cache")}
    run([sys.executable, "-m", "build", "--wheel", "--outdir", out, src], cwd=src, env=env)
    (built,) = out.glob("*.whl")
    return built


def test_wheel_holds_both_apps_migrations_data_and_the_receiver_toolkit(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }

    assert sources - names == set()
    assert set(PROBES) <= names
    assert {
        "subscriptions/migrations/0001_initial.py",
        "deliveries/migrations/0001_initial.py",
    } <= names
    assert {"deliveries/checks.py", "webhooks_core/conf.py", "webhooks_receiver/django.py"} <= names
    tops = {name.split("/")[0] for name in names if not name.endswith(".dist-info/RECORD")}
    assert {top for top in tops if not top.endswith(".dist-info")} == set(PACKAGES)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [
        line
        for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]
    assert requires and all(
        ">=" in line and "<" in line for line in requires if "sidecar" not in line
    )


def test_packaged_code_and_migrations_never_refer_to_the_reference_project():
    offenders = [
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "webhooks_project" in path.read_text()
    ]

    assert offenders == []


PUBLISH = """
import json

from django.contrib.auth import get_user_model

import deliveries, subscriptions, webhooks_receiver
from deliveries.services import publish_event
from subscriptions.models import Subscription

owner = get_user_model().objects.create_user("owner", password="pw")
sub = Subscription.objects.create(owner=owner, url="{url}", event_types=["order.*"])
published = publish_event("order.created", {{"id": 1001, "total": "42.00"}})
print("RESULT " + json.dumps({{
    "secret": sub.secret,
    "event": str(published.event.pk),
    "deliveries": published.deliveries,
    "files": [m.__file__ for m in (deliveries, subscriptions, webhooks_receiver)],
}}))
"""

VERIFY = """
import json

from django.db import connection
from django.http import HttpResponse
from django.test import RequestFactory

from deliveries.models import Delivery
from webhooks_receiver import verify_event
from webhooks_receiver.django import webhook_view

captured = json.load(open("{captured}"))
body = captured["body"].encode()
event = verify_event(captured["secret"], body, captured["headers"])

seen = []

@webhook_view(secret=captured["secret"])
def hook(request, event):
    seen.append(event.type)
    return HttpResponse("ok")

request = RequestFactory().post(
    "/hook", body, content_type="application/json", headers=captured["headers"]
)
status = hook(request).status_code

# The portal from the wheel: its templates render and its static files are found.
from django.contrib.staticfiles import finders
from django.test import Client
from webhooks_portal.access import entry_path, make_token

browser = Client(HTTP_HOST="localhost")
browser.get(entry_path(make_token("default")))
portal_page = browser.get("/portal/endpoints/")
print("RESULT " + json.dumps({{
    # Names and URLs carry <wbr> where they may wrap (webhooks_core.wrap).
    "portal": [
        portal_page.status_code,
        captured["url"] in portal_page.content.decode().replace("<wbr>", ""),
    ],
    "portal_css": bool(finders.find("webhooks_portal/portal.css")),
    "id": event.id,
    "type": event.type,
    "data": event.data,
    "view": [status, seen],
    "statuses": list(Delivery.objects.values_list("status", flat=True)),
    "database": connection.vendor,
}}))
"""

SCHEMA_AND_DOCS = """
import json

from django.test import Client

client = Client(HTTP_HOST="localhost")
schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
docs = client.get("/api/docs/")
paths = sorted(schema.json()["paths"]) if schema.status_code == 200 else []
print("RESULT " + json.dumps({
    "schema": [schema.status_code, paths],
    "docs": [docs.status_code, "swagger-ui" in docs.content.decode()],
}))
"""

# The API inside the host, whose startproject settings have no REST_FRAMEWORK at all: lists are
# still paginated and capped, a body nested 10,000 deep is still a JSON 400.
API = """
import json

from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from deliveries.models import Event

admin = get_user_model().objects.create_superuser("api-admin", "a@example.com", "pw")
api = APIClient(HTTP_HOST="localhost")
api.force_authenticate(admin)
Event.objects.bulk_create(Event(type="audit.listed", data={}) for _ in range(1005))
page = api.get("/api/events/", {"limit": 1000000000}).json()
deep = api.generic(
    "POST", "/api/events/", "[" * 10000 + "]" * 10000, content_type="application/json"
)
print("RESULT " + json.dumps({
    "page": ["count" in page, len(page["results"]), bool(page["next"])],
    "deep": [deep.status_code, deep["content-type"]],
}))
"""


@pytest.fixture
def host_database() -> Iterator[dict | None]:
    """On the PostgreSQL run (DATABASE_URL=postgres://...), a fresh database for the host
    project on the same server, dropped afterwards; None means the host keeps its SQLite file.

    Created and dropped through the maintenance database `postgres`, which every server has:
    the database named in DATABASE_URL need not exist (pytest-django creates only test_<name>).
    """
    url = urlsplit(os.environ.get("DATABASE_URL", ""))
    if not url.scheme.startswith("postgres"):
        yield None
        return
    import psycopg

    name = f"{url.path.lstrip('/') or 'webhooks'}_embed_{secrets.token_hex(3)}"
    params = {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or 5432,
        "user": unquote(url.username or "postgres"),
        "password": unquote(url.password or ""),
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield {"ENGINE": "django.db.backends.postgresql", "NAME": name, **params}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def result_of(output: str) -> dict:
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_fresh_project_installs_the_wheel_migrates_and_receives_a_verified_delivery(
    wheel, tmp_path, broker, receiver, host_database
):
    venv = tmp_path / "venv"
    bin_dir = venv / "bin"
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        # The real HOME: pip reads the machine's index configuration from the user's pip.conf.
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "PYTHONUNBUFFERED": "1",
        "CELERY_BROKER_URL": broker.url,
    }
    for name in ("LANG", "LC_ALL", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"):
        if name in os.environ:
            env[name] = os.environ[name]
    # pip alone may use a proxy; the host's processes talk to 127.0.0.1 only.
    pip_env = {
        **env,
        **{
            k: v
            for k, v in os.environ.items()
            if k.startswith("PIP_") or k.lower().endswith("_proxy")
        },
        "PIP_CACHE_DIR": str(tmp_path / "pip-cache"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }

    # Given a clean virtualenv with only the wheel and its dependencies...
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path, env=pip_env)
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    extras = ["psycopg[binary]>=3.2,<4"] if host_database else []
    run(
        # With the `beat` extra, as docs/embedding.md installs it (its INSTALLED_APPS list
        # django_celery_beat).
        [bin_dir / "python", "-m", "pip", "install", "-q", f"{wheel}[beat]", *extras],
        cwd=tmp_path,
        env=pip_env,
    )

    # ...and a fresh project with a custom user model and an app of its own labelled
    # "subscriptions", to which docs/embedding.md adds the apps, a Celery app and one include.
    host = tmp_path / "host"
    host.mkdir()
    run([bin_dir / "django-admin", "startproject", "hostproj", host], cwd=tmp_path, env=env)
    (host / "accounts").mkdir()
    (host / "accounts" / "__init__.py").write_text("")
    (host / "accounts" / "models.py").write_text(
        "from django.contrib.auth.models import AbstractUser\n\n\n"
        "class User(AbstractUser):\n    pass\n"
    )
    (host / "billing" / "subscriptions").mkdir(parents=True)
    (host / "billing" / "__init__.py").write_text("")
    (host / "billing" / "subscriptions" / "__init__.py").write_text("")
    (host / "billing" / "subscriptions" / "models.py").write_text(
        "from django.db import models\n\n\n"
        "class Plan(models.Model):\n    name = models.CharField(max_length=50)\n"
    )
    project = host / "hostproj"
    with (project / "settings.py").open("a") as settings:
        settings.write('\nINSTALLED_APPS += ["accounts", "billing.subscriptions"]\n')
        settings.write('AUTH_USER_MODEL = "accounts.User"\n')
        if host_database:
            settings.write(f'DATABASES = {{"default": {host_database!r}}}\n\n')
        else:
            settings.write('DATABASES["default"]["OPTIONS"] = {"timeout": 20}\n\n')
        settings.write(docs_block("installed-apps") + "\n")
    (project / "celery.py").write_text(docs_block("celery.py"))
    (project / "__init__.py").write_text(docs_block("__init__.py"))
    with (project / "urls.py").open("a") as urls:
        urls.write("\n" + docs_block("urls"))
    manage = [bin_dir / "python", host / "manage.py"]

    # When it is checked and migrated with no settings for the apps...
    check = run([*manage, "check"], cwd=host, env=env)
    assert "no issues" in check, check
    run([*manage, "makemigrations", "accounts", "subscriptions"], cwd=host, env=env)
    migrated = run([*manage, "migrate"], cwd=host, env=env)
    assert "Applying webhook_subscriptions.0001_initial" in migrated
    assert "Applying deliveries.0001_initial" in migrated
    assert "Applying subscriptions.0001_initial" in migrated  # the host's own app
    assert "No changes detected" in run([*manage, "makemigrations", "--check"], cwd=host, env=env)
    # ...the API's schema and docs page answer where the one include put them...
    api = result_of(run([*manage, "shell", "-c", SCHEMA_AND_DOCS], cwd=host, env=env))
    assert api["docs"] == [200, True]
    assert api["schema"][0] == 200
    assert {"/api/events/", "/api/subscriptions/", "/api/deliveries/"} <= set(api["schema"][1])
    # (The receiver below listens on plain http on 127.0.0.1: a demo's settings, not the apps'.)
    with (project / "settings.py").open("a") as settings:
        settings.write(
            'WEBHOOKS = {"ALLOW_PRIVATE_NETWORKS": True, "ALLOW_HTTP": True,'
            ' "RETRY_SCHEDULE": [0, 1, 1]}\n'
        )

    # ...a worker and beat from the virtualenv run on the host's own Celery app...
    processes: list[Process] = []

    def start(name: str, *args: str) -> Path:
        log = tmp_path / f"{name}.log"
        command = [str(bin_dir / "celery"), "-A", "hostproj", *args, "-l", "info"]
        processes.append(Process(command, env=env, cwd=host, log=log).start())
        return log

    try:
        worker_log = start(
            "worker",
            "worker",
            *("-Q", "webhooks,webhooks.retry,webhooks.maintenance", "-P", "threads", "-c", "2"),
            *("--prefetch-multiplier", "1", "--without-heartbeat", "--without-gossip"),
            "--without-mingle",
        )
        worker = processes[0]
        assert wait_until(
            lambda: b" ready." in worker_log.read_bytes() or not worker.alive(), timeout=60
        ), worker_log.read_text()
        assert worker.alive(), worker_log.read_text()
        boot = worker_log.read_text()
        assert "app:         hostproj" in boot, boot
        assert "deliveries.tasks.deliver" in boot, boot
        # Beat with its defaults (no CELERY_BEAT_SCHEDULE, no scheduler setting).
        beat_log = start("beat", "beat", "-s", str(tmp_path / "beat-schedule"))

        # ...and the host publishes through the Python API,
        published = result_of(
            run(
                [*manage, "shell", "-c", PUBLISH.format(url=receiver.url("/hook"))],
                cwd=host,
                env=env,
            )
        )
        site_packages = str(venv / "lib")
        assert all(path.startswith(site_packages) for path in published["files"]), published
        assert published["deliveries"] == 1

        # then the delivery arrives and verifies with the toolkit from the wheel.
        assert receiver.wait_for(1, "/hook", timeout=60), worker_log.read_text()
        (request,) = receiver.requests_to("/hook")
        headers = {name.lower(): value for name, value in request.headers.items()}
        captured = tmp_path / "captured.json"
        captured.write_text(
            json.dumps(
                {
                    "secret": published["secret"],
                    "body": request.body.decode(),
                    "headers": headers,
                    "url": receiver.url("/hook"),
                }
            )
        )

        def delivered() -> dict:
            out = run([*manage, "shell", "-c", VERIFY.format(captured=captured)], cwd=host, env=env)
            return result_of(out)

        assert wait_until(lambda: delivered()["statuses"] == ["succeeded"], timeout=30)
        # Beat has the sweep, registered by the apps, run on the maintenance queue.
        assert wait_until(
            lambda: (
                "Sending due task webhooks-sweep (deliveries.tasks.sweep)" in beat_log.read_text()
            ),
            timeout=60,
        ), beat_log.read_text()
        assert wait_until(
            lambda: re.search(
                r"Task deliveries\.tasks\.sweep\[\S+\] succeeded", worker_log.read_text()
            ),
            timeout=60,
        ), (tmp_path / "beat.log").read_text() + worker_log.read_text()
        verified = delivered()
    finally:
        for process in processes:
            process.send(signal.SIGTERM, group=True)
        for process in processes:
            process.stop(signal.SIGTERM, group=True, timeout=20)

    api = result_of(run([*manage, "shell", "-c", API], cwd=host, env=env))
    assert api["page"] == [False, 1000, True], api
    assert api["deep"] == [400, "application/json"], api

    assert verified["id"] == headers["webhook-id"] == published["event"]
    assert (verified["type"], verified["data"]) == ("order.created", {"id": 1001, "total": "42.00"})
    assert verified["view"] == [200, ["order.created"]]
    assert verified["portal"] == [200, True] and verified["portal_css"]
    assert verified["database"] == ("postgresql" if host_database else "sqlite")
    # The guide's recommended settings are valid too.
    with (project / "settings.py").open("a") as settings:
        settings.write("\n" + docs_block("settings") + "\n")
    assert "no issues" in run([*manage, "check"], cwd=host, env=env)
