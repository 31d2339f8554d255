"""A table of hostile receivers against a real Celery worker, the sweep running meanwhile.

One worker process serves the whole table: every row is a path of one raw-socket receiver
(tests/hostile.py) and one subscription, all sent the same event at once. The test process
sweeps every half second (as beat would) with a short STALE_SENDING_AFTER, through the run and
for a window after it, so an attempt that was not recorded would be released and sent again
within the window. Then, per row: exactly one attempt row per POST the receiver got, never more
POSTs than the retry schedule allows, the delivery in the expected state, and the subscription
URL's query string (a token) nowhere in the worker's log.
"""

from __future__ import annotations

import gzip
import time
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from deliveries.models import UNFINISHED, Delivery, DeliveryAttempt, DeliveryStatus, ErrorKind
from deliveries.services import publish
from deliveries.services.sweeping import sweep
from tests.factories import make_subscription
from tests.hostile import Close, HostileServer, Pause, Reset, Send, Step, Trickle
from tests.procs import Worker, database_url_for_tests

# The rows are read from the run's snapshot; the mark makes pytest-django create the database.
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SCHEDULE = [0, 0.3, 0.3]  # three attempts
TOKEN = "s3cr3t-query-token"
OVERRIDES = {
    "RETRY_SCHEDULE": SCHEDULE,
    "RETRY_JITTER": 0,
    # 2 s: twenty times the 0.1 s a resetting receiver waits, so a loaded machine still sees
    # the reset, not the deadline; every trickling row takes 6 s or more, well past it.
    "TIMEOUT": 2,
    "CONNECT_TIMEOUT": 1,
    "STALE_SENDING_AFTER": 4,  # past TIMEOUT; a claim left behind is released within the window
    "SWEEP_GRACE": 1,
    "MAX_IN_FLIGHT": None,
}
WINDOW = 7  # seconds of sweeping after the last delivery finished: > STALE_SENDING_AFTER + a sweep

OK_HEAD = b"HTTP/1.1 200 OK\r\n"
GZIPPED_NULS = gzip.compress(b"\x00" * 100_000)


def answer(status: bytes, body: bytes = b"ok", *headers: bytes) -> Send:
    head = b"HTTP/1.1 " + status + b"\r\n" + b"".join(h + b"\r\n" for h in headers)
    return Send(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)


@dataclass(frozen=True)
class Row:
    id: str
    steps: tuple[Step, ...]
    status: str  # the delivery's final state
    kind: str  # the error kind of every attempt
    posts: int  # POSTs the receiver gets (= attempts)
    body: str | None = None  # the stored body of the last attempt, when it matters
    headers: dict[str, str] = field(default_factory=dict)  # expected stored response headers


FAILED, SUCCEEDED = DeliveryStatus.FAILED, DeliveryStatus.SUCCEEDED
N = len(SCHEDULE)
TABLE = [
    Row("nul-in-body", (answer(b"200 OK", b"ok\x00ok"),), SUCCEEDED, "", 1, "ok\ufffdok"),
    Row(
        "nul-in-header",
        (answer(b"200 OK", b"ok", b"X-Nul: a\x00b"),),
        SUCCEEDED,
        "",
        1,
        headers={"X-Nul": "a\ufffdb"},
    ),
    Row("nul-in-reason", (answer(b"200 O\x00K"),), SUCCEEDED, "", 1),
    Row(
        "invalid-utf8",
        (answer(b"200 OK", b"\xff\xfeok\xc3", b"X-Bytes: \xff\xfe"),),
        SUCCEEDED,
        "",
        1,
        "\ufffd\ufffdok\ufffd",
        {"X-Bytes": "\xff\xfe"},
    ),
    Row(
        "gzip-of-nuls",
        (answer(b"200 OK", GZIPPED_NULS, b"Content-Encoding: gzip"),),
        SUCCEEDED,
        "",
        1,
        "\ufffd" * 16384,
    ),
    Row(
        "early-hints",
        (
            Send(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"),
            Pause(0.1),
            answer(b"200 OK"),
        ),
        SUCCEEDED,
        "",
        1,
        "ok",
    ),
    Row(
        "malformed-header-line",
        (Send(OK_HEAD + b"Content-Length: 2\r\nthis is no header\r\nX-B: c\r\n\r\nok"),),
        SUCCEEDED,
        "",
        1,
        "ok",
    ),
    Row(
        "trickled-headers",
        (Trickle(OK_HEAD + b"Content-Length: 2\r\n\r\nok", 0.2),),
        FAILED,
        ErrorKind.TIMEOUT,
        N,
    ),
    Row(
        "trickled-headers-close",
        (Trickle(OK_HEAD + b"Connection: close\r\nContent-Length: 2\r\n\r\nok", 0.2), Close()),
        FAILED,
        ErrorKind.TIMEOUT,
        N,
    ),
    Row(
        "trickled-body",
        (Send(OK_HEAD + b"Content-Length: 40\r\n\r\n"), Trickle(b"x" * 40, 0.2)),
        FAILED,
        ErrorKind.TIMEOUT,
        N,
    ),
    Row(
        "trickled-body-close",
        (
            Send(OK_HEAD + b"Connection: close\r\nContent-Length: 40\r\n\r\n"),
            Trickle(b"x" * 40, 0.2),
            Close(),
        ),
        FAILED,
        ErrorKind.TIMEOUT,
        N,
    ),
    Row(
        "trickled-body-until-close",
        (Send(OK_HEAD + b"Connection: close\r\n\r\n"), Trickle(b"x" * 40, 0.2), Close()),
        FAILED,
        ErrorKind.TIMEOUT,
        N,
    ),
    Row(
        "chunked-trickle",
        (Send(OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"),)
        + (Send(b"1\r\nx\r\n"), Pause(0.2)) * 30,
        FAILED,
        ErrorKind.TIMEOUT,
        N,
    ),
    Row(
        "oversized-header-line",
        (answer(b"200 OK", b"ok", b"X-Big: " + b"a" * 70_000), Close()),
        FAILED,
        ErrorKind.PROTOCOL,
        N,
    ),
    Row(
        "too-many-headers",
        (answer(b"200 OK", b"ok", *(b"X-%d: a" % i for i in range(150))), Close()),
        FAILED,
        ErrorKind.PROTOCOL,
        N,
    ),
    Row(
        "bad-status-line",
        (Send(b"HTTP/1.1 2OO OK\r\n\r\n"), Close()),
        FAILED,
        ErrorKind.PROTOCOL,
        N,
    ),
    Row(
        "reset-after-headers",
        (Send(OK_HEAD + b"Content-Length: 10\r\n\r\n"), Pause(0.1), Reset()),
        FAILED,
        ErrorKind.CONNECTION,
        N,
    ),
    Row(
        "interim-then-close",
        (Send(b"HTTP/1.1 103 Early Hints\r\n\r\n"), Close()),
        FAILED,
        ErrorKind.CONNECTION,
        N,
    ),
    Row(
        "switching-protocols",
        (Send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"), Close()),
        FAILED,
        ErrorKind.PROTOCOL,
        N,
    ),
    Row(
        "retry-after-superscript",
        (answer(b"429 Too Many Requests", b"later", b"Retry-After: \xb2"),),
        FAILED,
        ErrorKind.HTTP_STATUS,
        N,
    ),
]


@dataclass
class Seen:
    status: str
    attempts: list[dict]
    posts: int


@dataclass
class Run:
    rows: dict[str, Seen]
    worker_log: str


def _all_finished(event) -> bool:
    return not Delivery.objects.filter(event=event, status__in=UNFINISHED).exists()


def _sweep_for(seconds: float, until=None) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sweep()
        if until is not None and until():
            return True
        time.sleep(0.5)
    return until is None or until()


@pytest.fixture(scope="module")
def run(django_db_setup, django_db_blocker, redis_server) -> Run:
    """Send one event through the whole table with one worker; what each row ended with."""
    from webhooks_project.celery import app

    server = HostileServer().start()
    for row in TABLE:
        server.script(f"/{row.id}", *row.steps)
    worker = None
    with (
        django_db_blocker.unblock(),
        override_settings(WEBHOOKS={**settings.WEBHOOKS, **OVERRIDES}),
    ):
        try:
            with app.connection_for_write() as conn:
                conn.default_channel.client.flushdb()
            worker = Worker(
                redis_server.url, database_url_for_tests(), concurrency=8, overrides=OVERRIDES
            ).start()
            subscriptions = {
                make_subscription(server.url(f"/{row.id}") + f"?token={TOKEN}").pk: row.id
                for row in TABLE
            }
            event = publish("order.created", {"n": 1})
            _sweep_for(90, until=lambda: _all_finished(event))
            _sweep_for(WINDOW)
            rows = {}
            for delivery in Delivery.objects.filter(event=event):
                attempts = list(
                    DeliveryAttempt.objects.filter(delivery=delivery)
                    .order_by("number")
                    .values(
                        "number",
                        "response_status",
                        "response_headers",
                        "response_body",
                        "error_kind",
                        "error",
                    )
                )
                row_id = subscriptions[delivery.subscription_id]
                rows[row_id] = Seen(delivery.status, attempts, server.counts[f"/{row_id}"])
        finally:
            if worker is not None:
                worker.stop()
            server.stop()
            call_command("flush", interactive=False, verbosity=0)
    return Run(rows, worker.log.read_text(errors="replace"))


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
def test_hostile_receiver(run, row):
    seen = run.rows[row.id]
    # Exactly one attempt row per POST received, numbered 1..n, never beyond the schedule.
    assert seen.posts == len(seen.attempts) == row.posts, seen
    assert [a["number"] for a in seen.attempts] == list(range(1, row.posts + 1))
    assert seen.status == row.status, seen
    assert {a["error_kind"] for a in seen.attempts} == {row.kind}, seen.attempts
    last = seen.attempts[-1]
    if row.body is not None:
        assert last["response_body"] == row.body
    for name, value in row.headers.items():
        assert last["response_headers"][name] == value
    for attempt in seen.attempts:
        assert TOKEN not in attempt["error"]


def test_worker_log_holds_no_query_string_and_no_traceback(run):
    assert TOKEN not in run.worker_log
    # urllib3 logs its header-parsing warning with the parser's traceback (receiver input);
    # nothing else may.
    warnings = run.worker_log.count("Failed to parse headers (url=http://127.0.0.1:")
    assert warnings >= 1
    assert run.worker_log.count("Traceback") == warnings
    assert "?[redacted]" in run.worker_log
