"""The reference project on a fresh database: its demo event type is in the catalog after
`migrate` alone (post_migrate, no other command), the README's walk-through event publishes
against it, and its recorded contracts match the code (`webhooks_contracts --check`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SHOW_CATALOG = """
import json
from subscriptions.models import EventType
from deliveries.services import publish
catalog = [
    {"name": t.name, "declared": t.declared,
     "versions": [[v.version, v.deprecated, v.example] for v in t.versions.order_by("version")]}
    for t in EventType.objects.order_by("name")
]
event = publish("order.created", {"id": 1001, "total": "42.00"})
print(json.dumps({"catalog": catalog, "version": event.version, "renditions": event.renditions}))
"""


def manage(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webhooks_project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        "DJANGO_SECRET_KEY": "reference-test-" + "x" * 40,
        "DJANGO_DEBUG": "1",  # as `dev.py up` runs it
    }
    env.pop("WEBHOOKS_OVERRIDES", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_fresh_reference_project_lists_its_demo_type_after_migrate_alone(tmp_path):
    migrated = manage(tmp_path, "migrate", "-v", "0")
    assert migrated.returncode == 0, migrated.stderr

    shown = manage(tmp_path, "shell", "-c", SHOW_CATALOG)

    assert shown.returncode == 0, shown.stderr
    result = json.loads(shown.stdout.strip().splitlines()[-1])
    assert result["catalog"] == [
        {
            "name": "order.created",
            "declared": True,
            "versions": [
                [1, True, {"id": 1001, "amount_cents": 4200}],
                [2, False, {"id": 1001, "total": "42.00", "currency": "EUR"}],
            ],
        }
    ]
    # The README's event is valid v2 data, and its v1 rendition matches v1's schema (the
    # reference project runs with DOWNGRADE_ERRORS "raise" under DEBUG).
    assert result["version"] == 2
    assert result["renditions"] == {"1": {"id": 1001, "amount_cents": 4200}}


def test_the_reference_projects_recorded_contracts_match_its_code(tmp_path):
    checked = manage(tmp_path, "webhooks_contracts", "--check")

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "match" in checked.stdout
