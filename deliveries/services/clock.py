"""The database's clock: the one clock every process of the pipeline judges time by.

Claims and staleness are judged inside the statements themselves (`Now()`, the database's
`now()`): a worker whose clock runs behind or ahead never makes another process take its claim
for stale. Some times are still computed in Python before they are written (a retry's due time,
`now + delay`; a fan-out's `created_at`): `now()` gives this process's clock corrected by its
measured offset from the database's, so they are on the database's clock too.

Each process measures that offset when it starts working and again every
`CHECK_INTERVAL` seconds (one `SELECT now()`, timed by the round trip). Above
`WEBHOOKS["CLOCK_OFFSET_LIMIT"]` seconds it logs an error; every measurement is stored
(`WorkerClock`), so the Prometheus endpoint (`webhooks_clock_offset_seconds`) and the admin
dashboard show it. What a large offset still affects: `webhook-timestamp` is this process's own
clock (receivers reject more than five minutes of skew, docs/receiving.md), and secret rotation
expiries are judged by it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from typing import Any

from django.db import connections
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..conf import webhook_settings
from ..models import WorkerClock
from .connections import working_alias

logger = logging.getLogger("deliveries.clock")

# Seconds between two measurements in one process ("every few minutes").
CHECK_INTERVAL = 300.0
# Measurements older than this are not shown (their worker stopped) and are deleted.
KEEP_FOR = dt.timedelta(hours=1)


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = 0
        self.offset = 0.0  # seconds: database clock minus this process's clock
        self.next_check = 0.0  # monotonic


_state = _State()


def db_now_sql(connection: Any) -> str:
    """The SQL of `Now()` on `connection`'s backend (STATEMENT_TIMESTAMP() on PostgreSQL), for
    the statements that are built by hand (`states`). Compiled through the expression's own
    `as_<vendor>()` / `as_sql()` (Django's documented Expression API): `Now` has no
    sub-expressions, so no query compiler is involved."""
    now = Now()
    compile_now = getattr(now, f"as_{connection.vendor}", now.as_sql)
    # No compiler: `Now` has no sub-expressions to compile (the stubs ask for one anyway).
    sql, _params = compile_now(None, connection)  # type: ignore[arg-type]
    return str(sql)


def measure(alias: str | None = None) -> float:
    """This process's offset from the database's clock, in seconds (positive: the database is
    ahead). One `SELECT now()`; the local time taken is the middle of its round trip."""
    connection = connections[alias or working_alias()]
    with connection.cursor() as cursor:
        before = time.time()
        cursor.execute(f"SELECT {db_now_sql(connection)}", [])  # params: "%%" becomes "%"
        value = cursor.fetchone()[0]
        after = time.time()
    if isinstance(value, str):  # SQLite answers text, in UTC
        value = parse_datetime(value)
    if value is None:
        raise ValueError("the database did not answer a time")
    if timezone.is_naive(value):
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp() - (before + after) / 2


def check(*, force: bool = False) -> float:
    """Measure the offset if it is due (at start, then every CHECK_INTERVAL seconds), record it
    and log an error above `CLOCK_OFFSET_LIMIT`; returns the offset in use (seconds).

    Never raises: a failed measurement keeps the last offset and is tried again at the next
    interval (the attempt that asked goes on)."""
    mono = time.monotonic()
    pid = os.getpid()
    if not force and _state.pid == pid and mono < _state.next_check:
        return _state.offset
    with _state.lock:
        if not force and _state.pid == pid and mono < _state.next_check:
            return _state.offset
        _state.pid, _state.next_check = pid, mono + CHECK_INTERVAL
        try:
            _state.offset = measure()
            _record(_state.offset)
        except Exception:  # the offset is advisory: never stop a delivery for it
            logger.warning("clock offset not measured", exc_info=True)
            return _state.offset
    limit = float(webhook_settings.CLOCK_OFFSET_LIMIT)
    if abs(_state.offset) > limit:
        logger.error(
            "this worker's clock is %.1f s %s the database's (limit %g s): its webhook-timestamp "
            "headers are off by as much; synchronise the host's clock (NTP)",
            abs(_state.offset),
            "behind" if _state.offset > 0 else "ahead of",
            limit,
            extra={"clock_offset_seconds": round(_state.offset, 3)},
        )
    return _state.offset


def now() -> dt.datetime:
    """The database's time, as this process estimates it (its clock plus the measured offset)."""
    return timezone.now() + dt.timedelta(seconds=check())


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def _record(offset: float) -> None:
    alias = working_alias()
    WorkerClock.objects.using(alias).update_or_create(
        worker=worker_name(), defaults={"offset_seconds": offset, "measured_at": Now()}
    )
    WorkerClock.objects.using(alias).filter(measured_at__lt=Now() - KEEP_FOR).delete()


def recent_offsets() -> list[WorkerClock]:
    """The offsets measured by workers in the last few intervals, largest first (the dashboard
    and the metric read them)."""
    window = dt.timedelta(seconds=CHECK_INTERVAL * 3)
    rows = WorkerClock.objects.using(working_alias()).filter(measured_at__gte=Now() - window)
    return sorted(rows, key=lambda row: -abs(row.offset_seconds))
