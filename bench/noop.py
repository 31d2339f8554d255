"""The yardstick tasks, loaded into the bench's workers with `-I bench.noop`.

`noop` does nothing, so draining it measures Celery's own cost per task with the worker
configuration under test. `post` does only what the cheapest possible delivery task would: one
`requests` POST of the bench payload to the receiver in BENCH_POST_URL, on a Session kept per
thread, with no signing, no claim and no record.

`post_db` and `post_db_redis` (`bench/run.py --floors`) are that POST wrapped in the round trips
a delivery makes, each doing no work: two statements (`SELECT 1`, on a connection taken from the
pool and given back before the request and at the end, as a delivery does), then also two Redis
script calls (`return 1`, as taking and freeing an in-flight slot). Their cost over `post` is
what the round trips alone cost in this worker, whatever the statements say: the floor of any
delivery that claims and records in the database and counts its slots in Redis.
"""

import json
import os
import threading

import redis
import requests
from celery import shared_task
from django.db import connection

from deliveries.services.connections import release_pooled_connection

_local = threading.local()
BODY = json.dumps({"type": "bench.post", "data": {"n": 0}}).encode()


@shared_task(name="bench.noop", ignore_result=True)
def noop(delivery_id: int = 0, attempt: int = 1) -> None:
    return None


@shared_task(name="bench.post", ignore_result=True)
def post(delivery_id: int = 0, attempt: int = 1) -> None:
    _post(delivery_id)


@shared_task(name="bench.post_db", ignore_result=True)
def post_db(delivery_id: int = 0, attempt: int = 1) -> None:
    _statement()
    _post(delivery_id)
    _statement()


@shared_task(name="bench.post_db_redis", ignore_result=True)
def post_db_redis(delivery_id: int = 0, attempt: int = 1) -> None:
    _statement()
    _script()
    _post(delivery_id)
    _script()
    _statement()


def _statement() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        release_pooled_connection()


def _script() -> None:
    script = getattr(_local, "script", None)
    if script is None:
        client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
        script = _local.script = client.register_script("return 1")
    script()


def _post(delivery_id: int) -> None:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        session.trust_env = False
    response = session.post(
        f"{os.environ['BENCH_POST_URL']}{delivery_id}",
        data=BODY,
        headers={"webhook-id": f"bare-{delivery_id}"},
        timeout=10,
    )
    response.raise_for_status()
