"""What the API answers when an endpoint is enabled again: the registry knows nothing of the
deliveries it missed, so the app that does (the pipeline) registers a reporter here, once, from
its `AppConfig.ready()`; the admin and the portal ask the pipeline directly.

A reporter is `reporter(subscription, disabled_at, failing_since) -> dict`: keys added to the
answer of the `PATCH` that enabled it (`disabled_at` and `failing_since` as they were before).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from .models import Subscription

Reporter = Callable[[Subscription, "dt.datetime | None", "dt.datetime | None"], dict[str, Any]]

_reporters: list[Reporter] = []


def register(reporter: Reporter) -> None:
    """Add `reporter` to what an enabling `PATCH` answers (idempotent)."""
    if reporter not in _reporters:
        _reporters.append(reporter)


def report(
    subscription: Subscription, disabled_at: dt.datetime | None, failing_since: dt.datetime | None
) -> dict[str, Any]:
    """Every registered reporter's keys for a subscription that was just enabled."""
    answer: dict[str, Any] = {}
    for reporter in _reporters:
        answer.update(reporter(subscription, disabled_at, failing_since))
    return answer
