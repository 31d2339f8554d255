"""Replays this browser queued, so the delivery log keeps reloading until their task ran.

A replay is a Celery task (`deliveries.services.replay.start_replay()`): the page the portal
redirects to after queuing one can load before the task reopened any delivery, showing every
row finished. The session remembers each replay for `WATCH_SECONDS`; the log counts what the
task has not reopened yet (`replay.not_yet_replayed()`) and reloads while that is above 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import cast

from django.http import HttpRequest
from django.utils import timezone

from deliveries.services import replay

SESSION_KEY = "webhooks_portal_replays"
# How long a queued replay is watched at most, in seconds: a task the broker lost (or a
# worker that is down) does not keep the page reloading forever.
WATCH_SECONDS = 600


def remember(request: HttpRequest, result: replay.ReplayResult) -> None:
    """Store a replay just queued in the session (nothing when it matched no delivery)."""
    if not result.queued:
        return
    watched = [
        *_live(request.session.get(SESSION_KEY, [])),
        {
            "endpoint": str(result.request.subscription_id),
            "since": result.request.since.isoformat(),
            "until": result.request.until.isoformat(),
            "statuses": list(result.request.statuses),
            "queued_at": result.queued_at.isoformat(),
        },
    ]
    request.session[SESSION_KEY] = watched


def watched_endpoints(request: HttpRequest) -> list[str]:
    """The endpoint ids of the replays this session remembers (a handful at most)."""
    return [item["endpoint"] for item in request.session.get(SESSION_KEY, [])]


def waiting(request: HttpRequest, endpoints: Iterable[object]) -> int:
    """How many deliveries the session's replays of `endpoints` (subscription ids) have yet
    to reopen; replays that are done or older than `WATCH_SECONDS` are forgotten."""
    stored = request.session.get(SESSION_KEY)
    if not stored:
        return 0
    shown = {str(pk) for pk in endpoints}
    kept, total = [], 0
    for item in _live(stored):
        left = 0
        if item["endpoint"] in shown:
            left = replay.not_yet_replayed(
                replay.ReplayRequest(
                    str(item["endpoint"]),
                    dt.datetime.fromisoformat(str(item["since"])),
                    dt.datetime.fromisoformat(str(item["until"])),
                    tuple(cast("list[str]", item["statuses"])),
                ),
                dt.datetime.fromisoformat(str(item["queued_at"])),
            )
            if not left:
                continue
        kept.append(item)
        total += left
    if kept != stored:
        request.session[SESSION_KEY] = kept
    return total


def _live(stored: list[dict[str, object]]) -> list[dict[str, object]]:
    oldest = timezone.now() - dt.timedelta(seconds=WATCH_SECONDS)
    return [i for i in stored if dt.datetime.fromisoformat(str(i["queued_at"])) >= oldest]
