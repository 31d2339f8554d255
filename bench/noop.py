"""The yardstick tasks, loaded into the bench's workers with `-I bench.noop`.

`noop` does nothing, so draining it measures Celery's own cost per task with the worker
configuration under test. `post` does only what the cheapest possible delivery task would: one
`requests` POST of the bench payload to the receiver in BENCH_POST_URL, on a Session kept per
thread, with no signing, no claim and no record.
"""

import json
import os
import threading

import requests
from celery import shared_task

_local = threading.local()
BODY = json.dumps({"type": "bench.post", "data": {"n": 0}}).encode()


@shared_task(name="bench.noop", ignore_result=True)
def noop(delivery_id: int = 0, attempt: int = 1) -> None:
    return None


@shared_task(name="bench.post", ignore_result=True)
def post(delivery_id: int = 0, attempt: int = 1) -> None:
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
