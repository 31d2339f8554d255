"""Handing work to Celery by task name, and asking the broker how much waits.

The services send tasks by name through the host's current Celery app, so they never import
`deliveries.tasks` (which imports them): the tasks module is loaded by Celery alone, in the
processes that run tasks (`autodiscover_tasks()` or `CELERY_IMPORTS`).

Messages only wake a worker: the delivery row holds the truth. If the broker cannot take a
message, the row stays due and the sweep sends it later, so `enqueue_attempts` never raises for
a broker failure; `send` raises `BROKER_ERRORS` and its callers decide.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from celery import current_app
from kombu import exceptions as kombu_exceptions
from kombu.exceptions import ChannelError, OperationalError

from . import tracing
from .conf import webhook_settings

logger = logging.getLogger(__name__)

# The tasks of deliveries/tasks.py, by the names they are registered under.
DELIVER = "deliveries.tasks.deliver"
FAN_OUT = "deliveries.tasks.fan_out"
SWEEP = "deliveries.tasks.sweep"
DISABLE_DEAD_ENDPOINTS = "deliveries.tasks.disable_dead_endpoints"
PRUNE = "deliveries.tasks.prune"
ROLL_UP = "deliveries.tasks.roll_up"
REPLAY_SUBSCRIPTION = "deliveries.tasks.replay_subscription"
ANNOUNCE_NOTICE = "deliveries.tasks.announce_notice"
RELEASE_NOTICES = "deliveries.tasks.release_notices"

# What publishing raises when the broker is down or refuses a message. A pipelined batch that
# failed mid-way raises BatchPublishError (kombu >= 5.7).
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    OSError,
    ConnectionError,
    TimeoutError,
    *(
        [kombu_exceptions.BatchPublishError]
        if hasattr(kombu_exceptions, "BatchPublishError")
        else []
    ),
)


def send(name: str, args: Sequence[Any], *, queue: str) -> None:
    """Send one message of the task `name` with positional `args` to `queue`.

    Raises one of `BROKER_ERRORS` if the broker cannot take it. Under `task_always_eager` (a
    host's tests) the task runs at once in this process, as `apply_async` would run it.
    """
    headers = tracing.message_headers()  # the sender's trace context, if any
    current_app.signature(name, args=tuple(args), queue=queue, headers=headers).apply_async()


def enqueue_attempts(
    items: Iterable[tuple[int, int]], *, task: str = DELIVER, tenant: str | None = None
) -> int:
    """Send one `task(delivery_id, attempt)` message per item, all over one producer.

    First attempts go to the delivery queue, later ones to the retry queue. Messages go out in
    pipelined chunks of `ENQUEUE_CHUNK` (kombu's `Producer.batch`: one round trip per chunk
    instead of one per message), each sent with `send_task` as Celery documents for bulk
    sends (one producer acquired for all). Returns how many were sent; on a broker failure it
    logs and returns the chunks that got through. `task` is a task name (the bench's yardstick
    tasks go through this same path). With `tenant`, the messages say whose they are: that
    tenant counts them as out until their chain ends (`services.fairness`).
    """
    kwargs = {"tenant": tenant} if tenant is not None else None
    app = current_app
    if app.conf.task_always_eager:
        # Run in-process, as `apply_async` does in eager mode (`send_task` would ignore it).
        items = list(items)
        for delivery_id, attempt in items:
            current_app.signature(
                task, args=(delivery_id, attempt), kwargs=kwargs, queue=_queue_for(attempt)
            ).apply_async()
        return len(items)
    sent = 0
    chunk_size = max(1, int(webhook_settings.ENQUEUE_CHUNK))
    headers = tracing.message_headers()  # one trace context for the whole batch
    pending = iter(items)
    try:
        with app.producer_or_acquire() as producer:
            # kombu >= 5.7 buffers Redis commands in a pipeline; older versions send at once.
            batch = getattr(producer, "batch", None)
            while chunk := list(itertools.islice(pending, chunk_size)):
                with batch(chunk_size) if batch else contextlib.nullcontext():
                    for delivery_id, attempt in chunk:
                        app.send_task(
                            task,
                            (delivery_id, attempt),
                            kwargs,
                            queue=_queue_for(attempt),
                            producer=producer,
                            headers=headers,
                        )
                sent += len(chunk)
    except BROKER_ERRORS as exc:
        logger.warning(
            "broker unavailable, %d message(s) sent before the error; the sweep will send the "
            "rest: %s",
            sent,
            exc,
        )
    return sent


def _queue_for(attempt: int) -> str:
    return webhook_settings.DELIVERY_QUEUE if attempt == 1 else webhook_settings.RETRY_QUEUE


def queue_lengths(
    names: Iterable[str] | None = None, *, timeout: float = 2.0
) -> dict[str, int | None]:
    """Messages waiting in each named queue (default: the delivery, retry and maintenance
    queues); None for all of them if the broker cannot say.

    Asked with a passive `queue_declare`, which every kombu transport answers; a queue never
    declared, or empty (Redis deletes empty lists), counts 0. Gives up after about `timeout`
    seconds when the broker is unreachable: the admin dashboard renders without it.
    """
    if names is None:
        names = (
            webhook_settings.DELIVERY_QUEUE,
            webhook_settings.RETRY_QUEUE,
            webhook_settings.MAINTENANCE_QUEUE,
        )
    lengths: dict[str, int | None] = dict.fromkeys(names)
    counted: dict[str, int] = {}
    conn = current_app.connection_for_read()
    try:
        with conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            channel = conn.default_channel
            for name in lengths:
                counted[name] = 0
                with contextlib.suppress(ChannelError):
                    counted[name] = channel.queue_declare(queue=name, passive=True).message_count
    except (*BROKER_ERRORS, *conn.connection_errors, *conn.channel_errors) as exc:
        logger.warning("broker unavailable, queue lengths unknown: %s", exc)
        return lengths
    return {**lengths, **counted}


def backlog() -> int | None:
    """Messages waiting in the delivery and retry queues; None if the broker cannot say.

    The sweep uses it to tell "the message is lost" from "the message is still queued behind
    others": re-enqueueing every due delivery of a long backlog would add a duplicate message per
    delivery per sweep and make the backlog longer still.
    """
    lengths = queue_lengths((webhook_settings.DELIVERY_QUEUE, webhook_settings.RETRY_QUEUE))
    if None in lengths.values():
        return None
    return sum(n for n in lengths.values() if n is not None)
