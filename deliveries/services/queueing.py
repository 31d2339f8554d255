"""Handing deliveries to Celery.

Messages are only a way to wake a worker: the delivery row holds the truth. If the broker cannot
take a message, the row stays due and the sweep sends it later, so nothing here raises.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from kombu.exceptions import ChannelError, OperationalError

from subscriptions.conf import webhook_settings

logger = logging.getLogger(__name__)

BROKER_ERRORS = (OperationalError, OSError, ConnectionError, TimeoutError)


def enqueue_attempts(items: Iterable[tuple[int, int]]) -> int:
    """Send one `deliver(delivery_id, attempt)` message per item over a single producer.

    First attempts go to the delivery queue, later ones to the retry queue. Returns how many
    were sent; on a broker failure it logs and returns what got through.
    """
    from deliveries.tasks import deliver

    sent = 0
    fresh, retry = webhook_settings.DELIVERY_QUEUE, webhook_settings.RETRY_QUEUE
    try:
        with deliver.app.producer_or_acquire() as producer:
            for delivery_id, attempt in items:
                deliver.apply_async(
                    (delivery_id, attempt),
                    producer=producer,
                    queue=fresh if attempt == 1 else retry,
                )
                sent += 1
    except BROKER_ERRORS as exc:
        logger.warning(
            "broker unavailable, %d message(s) sent before the error; the sweep will send the "
            "rest: %s",
            sent,
            exc,
        )
    return sent


def backlog() -> int | None:
    """Messages waiting in the delivery and retry queues; None if the broker cannot say.

    The sweep uses it to tell "the message is lost" from "the message is still queued behind
    others": re-enqueueing every due delivery of a long backlog would add a duplicate message per
    delivery per sweep and make the backlog longer still.
    """
    from deliveries.tasks import deliver

    total = 0
    try:
        with deliver.app.connection_for_read() as conn:
            channel = conn.default_channel
            for name in (webhook_settings.DELIVERY_QUEUE, webhook_settings.RETRY_QUEUE):
                # A queue never declared, or empty (Redis deletes empty lists), is not found.
                with contextlib.suppress(ChannelError):
                    total += channel.queue_declare(queue=name, passive=True).message_count
    except BROKER_ERRORS as exc:
        logger.warning("broker unavailable, queue depth unknown: %s", exc)
        return None
    return total
