"""Celery tasks: thin wrappers that take primary keys and call services.

Loaded by Celery only (autodiscovery or CELERY_IMPORTS); the services send these tasks by name
through `deliveries.dispatch` and never import this module."""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from . import dispatch, tracing
from .conf import webhook_settings
from .services import attempt_delivery, clock, maintenance, notices, replay, rollups
from .services import fan_out as run_fan_out
from .services import sweep as run_sweep
from .services.connections import release_pooled_connection


@worker_ready.connect(dispatch_uid="deliveries-clock-at-start")
def measure_clock_at_start(sender: Any = None, **kwargs: Any) -> None:
    """A worker measures its offset from the database's clock as it starts (then every few
    minutes, as it works: `clock.check`)."""
    clock.check(force=True)
    release_pooled_connection()


@shared_task(
    bind=True,
    name=dispatch.DELIVER,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
)
@tracing.continues_trace
def deliver(
    self,
    delivery_id: int,
    attempt: int = 1,
    deferrals: int = 0,
    cap: dict | None = None,
    tenant: str | None = None,
) -> str:
    """Attempt `attempt` of a delivery. Short waits come back as a retry of this task on the
    retry queue (never longer than `max_countdown`, which stays inside the broker's visibility
    timeout); long ones were parked in the database by the service and the sweep sends them.
    `tenant` is set on messages counted for their tenant's fair share (services.fairness)."""
    try:
        outcome = attempt_delivery(
            delivery_id,
            attempt,
            task_id=self.request.id or "",
            deferrals=deferrals,
            cap=cap,
            tenant=tenant,
        )
    finally:
        release_pooled_connection()
    if outcome.action in ("retry", "defer"):
        raise self.retry(
            args=(delivery_id, outcome.next_attempt),
            kwargs={"deferrals": outcome.deferrals, "cap": outcome.cap, "tenant": tenant},
            countdown=outcome.countdown,
            queue=webhook_settings.RETRY_QUEUE,
            max_retries=None,
        )
    return outcome.action


@shared_task(name=dispatch.FAN_OUT, ignore_result=True, acks_late=True)
@tracing.continues_trace
def fan_out(event_id: str) -> int:
    """A large fan-out, moved off the publishing request (see FAN_OUT_INLINE_MAX)."""
    return run_fan_out(event_id)


@shared_task(name=dispatch.SWEEP, ignore_result=True)
def sweep() -> None:
    run_sweep()


@shared_task(name=dispatch.DISABLE_DEAD_ENDPOINTS, ignore_result=True)
def disable_dead_endpoints() -> None:
    maintenance.disable_dead_endpoints()


@shared_task(name=dispatch.PRUNE, ignore_result=True)
def prune() -> None:
    """One time-budgeted prune run; when old history is left over, the next run is sent at
    once (not at the next hourly beat), so pruning keeps pace with any daily volume."""
    if not maintenance.prune().done:
        dispatch.send(dispatch.PRUNE, (), queue=webhook_settings.MAINTENANCE_QUEUE)


@shared_task(name=dispatch.ROLL_UP, ignore_result=True)
def roll_up() -> None:
    """Count the attempts since the last run into the hourly health buckets."""
    rollups.roll_up()


@shared_task(name=dispatch.ANNOUNCE_NOTICE, ignore_result=True)
def announce_notice(notice_id: int) -> None:
    """Email an endpoint notice and POST it to the operator URL (at most once)."""
    notices.announce(notice_id)


@shared_task(name=dispatch.RELEASE_NOTICES, ignore_result=True)
def release_notices() -> None:
    """Make final the `recovered` notices whose cool-down has passed (NOTICE_COOLDOWN)."""
    notices.release_due()


@shared_task(name=dispatch.REPLAY_SUBSCRIPTION, ignore_result=True)
def replay_subscription(subscription_id: str, since: str, until: str, statuses: list[str]) -> int:
    request = replay.ReplayRequest(
        subscription_id,
        dt.datetime.fromisoformat(since),
        dt.datetime.fromisoformat(until),
        tuple(statuses),
    )
    return replay.run_replay(request)
