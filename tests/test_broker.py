"""deliveries.broker: kombu's Redis transport, one client object per channel instead of one per
reservation and acknowledgement, on a real Redis."""

from __future__ import annotations

import pytest
import redis
from kombu import Connection, Exchange, Queue

from tests.procs import RedisServer


def _client_objects_built(broker_url: str, transport: str | None, messages: int) -> int:
    """Publish, consume and acknowledge `messages`; how many redis.Redis objects were built."""
    built = 0
    original = redis.Redis.__init__

    def counting(self, *args, **kwargs):
        nonlocal built
        built += 1
        original(self, *args, **kwargs)

    queue = Queue("broker-test", Exchange("broker-test"), routing_key="broker-test")
    received: list[int] = []
    redis.Redis.__init__ = counting
    try:
        with Connection(broker_url, transport=transport) as conn:
            with conn.Producer() as producer:
                for n in range(messages):
                    producer.publish(
                        {"n": n},
                        exchange=queue.exchange,
                        routing_key="broker-test",
                        declare=[queue],
                        serializer="json",
                    )
            built = 0  # count only what consuming and acknowledging build

            def on_message(body, message):
                received.append(body["n"])
                message.ack()

            with conn.Consumer(queue, callbacks=[on_message], accept=["json"]):
                while len(received) < messages:
                    conn.drain_events(timeout=5)
    finally:
        redis.Redis.__init__ = original
    assert sorted(received) == list(range(messages))
    return built


@pytest.fixture
def redis_url():
    server = RedisServer().start()
    yield server.url
    server.stop()


def test_acknowledging_reuses_one_client(redis_url):
    ours = _client_objects_built(redis_url, "deliveries.broker:Transport", 50)
    stock = _client_objects_built(redis_url, None, 50)
    assert stock >= 100  # kombu's own: one per reservation and one per ack
    assert ours <= 3


def test_the_reference_settings_use_it_for_redis_only():
    from django.conf import settings

    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert settings.CELERY_BROKER_TRANSPORT == "deliveries.broker:Transport"
