"""Celery's Redis transport, reusing one redis-py client object per channel.

kombu's Redis channel builds a new `redis.Redis` client for every command it sends outside its
consumer loop (`Channel.conn_or_acquire`): for every message a worker reserves (the unacked
index) and for every acknowledgement. The client object is only a front to the channel's
connection pool, but building one (its response-callback table, its event dispatcher) was about
a fifth of a Celery worker's consumer-thread CPU in the delivery benchmark. This channel builds
it once; commands still take their connection from the same pool, which is thread-safe, so
nothing else changes. Select it with

    CELERY_BROKER_TRANSPORT = "deliveries.broker:Transport"

for a `redis://` broker URL (the reference settings do). Other URL schemes keep their own
transport.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _shared_client: Any = None
    _shared_client_lock = threading.Lock()

    @contextlib.contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        shared = self._shared_client
        if shared is None:
            with self._shared_client_lock:
                if self._shared_client is None:
                    self._shared_client = self._create_client()
                shared = self._shared_client
        yield shared


class Transport(kombu_redis.Transport):
    Channel = Channel
