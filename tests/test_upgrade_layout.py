"""A database made by the previous package layout (the shared core inside `subscriptions`, the
portal imported as `portal`) migrates forward with today's code, and keeps every row: app labels
and table names did not change, only import paths.

The previous layout is taken from the repository's history (`git archive` of the last commit
before the move) and run as a real project against a real database: SQLite always, and
PostgreSQL when the suite runs on it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
from io import BytesIO
from pathlib import Path

import pytest
from django.db import connection

from tests.procs import ROOT

# The last commit of the old layout (portal/, subscriptions/conf.py, subscriptions/fields.py...).
OLD_LAYOUT = "1d65f8f"

# The old package names, spelled so that no rename tool rewrites them.
OLD_PORTAL = "".join(["por", "tal"])

SEED = """
from subscriptions.models import Subscription, Tenant
from OLD_PORTAL.models import PortalGrant

tenant = Tenant.objects.for_key("org_upgrade")
sub = Subscription.objects.create(
    tenant=tenant, url="https://hooks.example.com/in", event_types=["order.*"],
    headers={"Authorization": "Bearer kept-through-the-upgrade"},
)
PortalGrant.objects.create(tenant=tenant)
import json
print(json.dumps({"id": str(sub.pk), "secret": sub.secret}))
""".replace("OLD_PORTAL", OLD_PORTAL)

READ_BACK = """
import json
from subscriptions.models import Subscription
from webhooks_portal.models import PortalGrant

sub = Subscription.objects.get(pk=%r)
print(json.dumps({
    "secret": sub.secret,
    "headers": sub.headers,
    "tenant": sub.tenant_id,
    "grants": PortalGrant.objects.filter(tenant_id="org_upgrade").count(),
}))
"""


def old_tree(destination: Path) -> Path:
    """The old layout's files under `destination`; skips when the history is not here."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("needs the repository's history (git and .git)")
    archived = subprocess.run(
        [git, "archive", "--format=tar", OLD_LAYOUT], cwd=ROOT, capture_output=True
    )
    if archived.returncode != 0:
        pytest.skip(f"commit {OLD_LAYOUT} is not in this clone (shallow?)")
    with tarfile.open(fileobj=BytesIO(archived.stdout)) as tar:
        tar.extractall(destination, filter="data")
    return destination


def manage(tree: Path, database_url: str, *args: str) -> str:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO", "WEBHOOKS", "CELERY", "DATABASE"))
    }
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="webhooks_project.settings",
        # The same key on both sides: the encryption key at rest is derived from it.
        DJANGO_SECRET_KEY="upgrade-test-only-" + "k" * 40,
        PYTHONPATH=str(tree),
    )
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'upgrade.sqlite3'}"
        return
    if connection.vendor != "postgresql":
        pytest.skip("the suite runs on SQLite; the PostgreSQL case runs with DATABASE_URL")
    settings = connection.settings_dict
    name = f"test_upgrade_{uuid.uuid4().hex[:12]}"
    with connection._nodb_cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    user = settings["USER"] or ""
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = f"{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}"
    try:
        yield f"postgres://{user}{password}@{host}/{name}"
    finally:
        with connection._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.django_db
def test_a_database_of_the_old_layout_migrates_forward_and_keeps_its_rows(tmp_path, database_url):
    old = old_tree(tmp_path / "old")
    assert (old / OLD_PORTAL / "apps.py").exists() and (old / "subscriptions" / "conf.py").exists()

    manage(old, database_url, "migrate", "--no-input")
    seeded = json.loads(manage(old, database_url, "shell", "-c", SEED).strip().splitlines()[-1])

    manage(ROOT, database_url, "migrate", "--no-input")
    plan = manage(ROOT, database_url, "showmigrations", "--plan")
    assert "[ ]" not in plan, plan
    assert "[X]  webhooks_portal.0001_portal_grants" in plan
    manage(ROOT, database_url, "makemigrations", "--check", "--dry-run")

    read = json.loads(
        manage(ROOT, database_url, "shell", "-c", READ_BACK % seeded["id"]).strip().splitlines()[-1]
    )
    assert read == {
        "secret": seeded["secret"],
        "headers": {"Authorization": "Bearer kept-through-the-upgrade"},
        "tenant": "org_upgrade",
        "grants": 1,
    }
