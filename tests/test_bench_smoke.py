"""The benchmark command runs end to end in its smallest mode (not a timing test)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.integration


def test_bench_smoke_prints_every_scenario_and_checks_exactly_once(tmp_path):
    args = [sys.executable, "bench/run.py", "--smoke", "--floors", "--output"]
    args.append(str(tmp_path / "table.md"))
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        # Its own throwaway database on the same server, dropped at the end.
        server = url.rsplit("/", 1)[0]
        args += ["--db", "postgres", "--pg-url", server, "--pg-db", f"webhooks_smoke_{os.getpid()}"]
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}

    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = (tmp_path / "table.md").read_text()
    for scenario in "ABCDE":
        assert f"\n| {scenario} |" in table
    assert "NO:" not in table
    assert table.count("| yes |") >= 4  # A, B, C and D each checked exactly once
    assert "vs no-op" in table and "requests loop" in table
    # The yardsticks of --floors ran through the same workers and each POST arrived once.
    for what in ("only POSTs", "POSTs between two statements", "and two Redis scripts"):
        row = next(line for line in table.splitlines() if what in line)
        assert row.rstrip(" |").endswith("| yes | -"), row


def test_tenant_fanout_bench_runs_and_checks_isolation(tmp_path):
    # bench/tenants.py fanout, small (yet enough rows for PostgreSQL to prefer the index): every
    # check it makes (deliveries to the named tenant only, the plan reading the tenant index)
    # must hold, or it exits non-zero.
    args = [
        sys.executable,
        "bench/tenants.py",
        "fanout",
        *("--tenants", "200", "--per-tenant", "10", "--matching", "3"),
        *("--requests", "10", "--warmup", "2", "--output", str(tmp_path / "table.md")),
    ]
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        args += ["--db", "postgres", "--pg-url", url.rsplit("/", 1)[0]]
    else:
        args += ["--db", "sqlite"]
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}

    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = (tmp_path / "table.md").read_text()
    assert "| deliveries to another tenant's endpoint | 0 |" in table
    assert "| fan-out plan uses the tenant index | yes |" in table
