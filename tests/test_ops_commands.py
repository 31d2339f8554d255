"""Management commands: publish_event, replay, webhook_stats; their help and their errors."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from deliveries.models import Delivery, Event
from tests.factories import make_subscription
from tests.ops_helpers import make_delivery, roll_up

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("command", ["publish_event", "replay", "webhook_stats"])
def test_help(command):
    result = subprocess.run(
        [sys.executable, "manage.py", command, "--help"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout and "--" in result.stdout


@pytest.mark.django_db(transaction=True)
def test_publish_event_stores_and_fans_out(broker):
    # Autocommit, as when run from a shell: the fan-out runs before the command reports.
    sub = make_subscription("http://127.0.0.1:9/x", ["order.*"])
    out = run("publish_event", "order.created", "--data", '{"id": 1}', "--idempotency-key", "k1")
    event = Event.objects.get(idempotency_key="k1")
    assert f"Published event {event.pk}" in out and "to 1 subscriptions" in out
    assert event.data == {"id": 1}
    assert Delivery.objects.filter(event=event, subscription=sub).exists()
    again = run("publish_event", "order.created", "--data", '{"id": 1}', "--idempotency-key", "k1")
    assert "already published" in again
    with pytest.raises(CommandError, match=r"idempotency_key: .*another event type or data"):
        run("publish_event", "order.created", "--data", '{"id": 2}', "--idempotency-key", "k1")
    assert Event.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_publish_event_for_a_tenant_or_every_tenant(broker):
    mine = make_subscription("http://127.0.0.1:9/a", ["order.*"], tenant="org_a")
    theirs = make_subscription("http://127.0.0.1:9/b", ["order.*"], tenant="org_b")
    assert "to 1 subscriptions" in run("publish_event", "order.created", "--tenant", "org_a")
    event = Event.objects.get()
    assert event.tenant_id == "org_a"
    assert list(Delivery.objects.values_list("subscription", flat=True)) == [mine.pk]
    assert "to 2 subscriptions" in run("publish_event", "order.paid", "--broadcast")
    assert set(
        Delivery.objects.filter(event__type="order.paid").values_list("subscription", flat=True)
    ) == {mine.pk, theirs.pk}
    with pytest.raises(CommandError, match="tenant"):
        run("publish_event", "order.created", "--tenant", "bad key")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["order.created", "--data", "{oops"], "not valid JSON"),
        (["order.created", "--data", "[1]"], "JSON object"),
        (["not a type!", "--data", "{}"], "type"),
    ],
)
def test_publish_event_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        run("publish_event", *args)
    assert not Event.objects.exists()


def test_replay_inline_reopens_matching_deliveries(broker):
    sub = make_subscription("http://127.0.0.1:9/x")
    recent = make_delivery(sub, "failed", created_at=timezone.now() - dt.timedelta(minutes=10))
    old = make_delivery(sub, "failed", created_at=timezone.now() - dt.timedelta(hours=3))
    skipped = make_delivery(sub, "skipped", created_at=timezone.now() - dt.timedelta(minutes=10))

    out = run("replay", str(sub.pk), "--since", "1h", "--inline", "--status", "failed")
    assert "Sent again: 1 deliveries" in out
    assert Delivery.objects.get(pk=recent.pk).status == "retrying"
    assert Delivery.objects.get(pk=old.pk).status == "failed"
    assert Delivery.objects.get(pk=skipped.pk).status == "skipped"

    out = run("replay", str(sub.pk), "--since", "2h", "--status", "skipped")
    assert "Queued for replay: 1 deliveries" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not-a-uuid", "--since", "1h"], "No subscription"),
        (["00000000-0000-0000-0000-000000000000", "--since", "1h"], "No subscription"),
        (["SUB", "--since", "last tuesday"], "--since"),
        (["SUB", "--since", "1h", "--until", "2h"], "before"),
        (["SUB", "--since", "1h", "--status", "pending"], "Cannot replay pending"),
    ],
)
def test_replay_bad_input(args, message):
    sub = make_subscription("http://127.0.0.1:9/x")
    args = [str(sub.pk) if a == "SUB" else a for a in args]
    with pytest.raises(CommandError, match=message):
        run("replay", *args)


def test_webhook_stats_prints_a_table(broker):
    sub = make_subscription("http://127.0.0.1:9/stats", failing_since=timezone.now())
    make_delivery(sub, "succeeded", attempts=[(200, 30)])
    make_delivery(sub, "failed", attempts=[(500, 30)])
    roll_up()
    out = run("webhook_stats")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["subscription", "url", "active", "24h"]
    row = next(line for line in lines if str(sub.pk) in line)
    assert "http://127.0.0.1:9/stats" in row and "50.0%" in row and "<=50ms" in row
    assert any(line.startswith("backlog: due=0") for line in lines)
    assert "finished: created in the last hour): failed=1 succeeded=1" in out
    with pytest.raises(CommandError):
        run("webhook_stats", "--limit", "0")
