"""The yardstick task: does nothing, so draining it measures Celery's own cost per task with
the worker configuration under test. Loaded into the bench's workers with `-I bench.noop`."""

from celery import shared_task


@shared_task(name="bench.noop", ignore_result=True)
def noop(delivery_id: int = 0, attempt: int = 1) -> None:
    return None
