"""The attempt invariant: once a delivery is claimed, whatever fails (building the request,
sending, reading the answer, storing it), one attempt row is stored with an honest error kind
and the delivery follows the retry schedule; nothing a receiver answers leaves it `sending`.

Faults are caused, not mocked: a secret that cannot sign, a receiver's NUL byte that PostgreSQL
text cannot hold, a Retry-After that `float()` refuses, and a database trigger that refuses to
store an answer. Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from deliveries.conf import webhook_settings
from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus, ErrorKind
from deliveries.services.attempts import attempt_delivery, parse_retry_after
from tests.factories import make_delivery_to
from tests.hostile import Send

pytestmark = pytest.mark.django_db(transaction=True)


def answer(status: str, body: bytes, *headers: bytes) -> Send:
    head = b"HTTP/1.1 " + status.encode() + b"\r\n" + b"".join(h + b"\r\n" for h in headers)
    return Send(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def run_to_the_end(delivery: Delivery) -> list[str]:
    """Run the attempts the schedule allows, as the task would; the actions taken."""
    actions = []
    number = 1
    while number <= len(webhook_settings.RETRY_SCHEDULE):
        outcome = attempt_delivery(delivery.pk, number)
        actions.append(outcome.action)
        if outcome.action != "retry":
            break
        number = outcome.next_attempt
    return actions


# --- The receiver's answer -------------------------------------------------------------------


def test_nul_in_a_200_body_succeeds_with_one_attempt(hostile):
    """PostgreSQL text cannot hold U+0000. Stored as received, it raised a DataError: no
    attempt row, and the sweep's stale-claim release sent the webhook again every minute."""
    hostile.script("/nul", answer("200 OK", b"ok\x00ok", b"X-Nul: a\x00b"))
    delivery = make_delivery_to(hostile.url("/nul"))

    assert attempt_delivery(delivery.pk, 1).action == "done"

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.response_status == 200
    assert attempt.response_body == "ok\ufffdok"
    assert attempt.response_headers["X-Nul"] == "a\ufffdb"
    assert attempt.error_kind == ErrorKind.NONE
    assert hostile.counts["/nul"] == 1


def test_retry_after_with_a_non_ascii_digit_is_ignored(hostile, webhooks):
    """`429` with `Retry-After: \\xb2` ("²", which `str.isdigit()` accepts and
    `float()` refuses). Ignored; the schedule applies."""
    webhooks(RETRY_SCHEDULE=[0, 7], RETRY_JITTER=0)
    hostile.script("/busy", answer("429 Too Many Requests", b"slow down", b"Retry-After: \xb2"))
    delivery = make_delivery_to(hostile.url("/busy"))

    before = timezone.now()
    outcome = attempt_delivery(delivery.pk, 1)

    assert (outcome.action, outcome.countdown) == ("retry", 7.0)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING
    assert (delivery.next_attempt_at - before).total_seconds() == pytest.approx(7, abs=2)
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert (attempt.response_status, attempt.error_kind) == (429, ErrorKind.HTTP_STATUS)


@pytest.mark.parametrize(
    "value",
    [
        "\xb2",
        "\u0663",  # ARABIC-INDIC DIGIT THREE
        "\uff11\uff12",  # full-width digits
        "12.5",
        "-5",
        "9" * 5000,
        "Mon, 99 Foo 99999 99:99:99 GMT",
        "Wed, 21 Oct 10000 07:28:00 GMT",
        "Wed, 21 Oct 2015 07:28:00 +9999",
        "\x00",
        "",
    ],
)
def test_retry_after_never_raises(value):
    now = timezone.now()
    seconds = parse_retry_after(value, now)
    assert seconds is None or 0 <= seconds <= 86400


def test_retry_after_takes_ascii_seconds_and_http_dates():
    now = dt.datetime(2015, 10, 21, 7, 28, tzinfo=dt.UTC)
    assert parse_retry_after(" 120 ", now) == 120
    assert parse_retry_after("9" * 5000, now) == 86400
    assert parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now) == 120


# --- Our own failures --------------------------------------------------------------------------


def test_failure_to_build_the_request_is_an_internal_attempt_on_the_schedule(hostile, webhooks):
    """A secret that cannot sign (written around the API's validation): nothing is sent, each
    attempt is recorded as `internal` with the exception, the schedule runs out, `failed`."""
    webhooks(RETRY_SCHEDULE=[0, 0, 0], RETRY_JITTER=0)
    delivery = make_delivery_to(hostile.url("/never"), secret="whsec_not*base64")

    assert run_to_the_end(delivery) == ["retry", "retry", "done"]

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    attempts = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert [a.number for a in attempts] == [1, 2, 3]
    for attempt in attempts:
        assert attempt.error_kind == ErrorKind.INTERNAL
        assert attempt.error.startswith("ValueError: ")
        assert attempt.response_status is None
    assert delivery.last_error.startswith("ValueError: ")
    assert hostile.counts["/never"] == 0


@pytest.fixture
def refusing_trigger():
    """A database trigger that refuses any attempt row whose body contains `refuse-me`: a real
    store failure, on either database."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION test_refuse_attempt() RETURNS trigger AS $$ BEGIN "
                "IF NEW.response_body LIKE '%refuse-me%' THEN "
                "RAISE EXCEPTION 'attempt refused by a test trigger'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER test_refuse_attempt BEFORE INSERT ON webhooks_delivery_attempt "
                "FOR EACH ROW EXECUTE FUNCTION test_refuse_attempt()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER test_refuse_attempt BEFORE INSERT ON webhooks_delivery_attempt "
                "WHEN NEW.response_body LIKE '%refuse-me%' "
                "BEGIN SELECT RAISE(ABORT, 'attempt refused by a test trigger'); END"
            )
    yield
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP TRIGGER test_refuse_attempt ON webhooks_delivery_attempt")
            cursor.execute("DROP FUNCTION test_refuse_attempt()")
        else:
            cursor.execute("DROP TRIGGER test_refuse_attempt")


def test_answer_that_cannot_be_stored_keeps_its_200(hostile, refusing_trigger):
    """The receiver accepted: the delivery succeeds (no duplicate for it), and the attempt row
    says what went wrong on our side, without the body that could not be stored."""
    hostile.script("/refused", answer("200 OK", b"refuse-me"))
    delivery = make_delivery_to(hostile.url("/refused"))

    assert attempt_delivery(delivery.pk, 1).action == "done"

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert (attempt.response_status, attempt.error_kind) == (200, ErrorKind.INTERNAL)
    assert "attempt refused by a test trigger" in attempt.error
    assert attempt.response_body == ""
    assert attempt.request_headers["webhook-id"] == str(delivery.event_id)
    assert hostile.counts["/refused"] == 1


def test_failed_answer_that_cannot_be_stored_follows_the_schedule(
    hostile, refusing_trigger, webhooks
):
    webhooks(RETRY_SCHEDULE=[0, 0], RETRY_JITTER=0)
    hostile.script("/refused", answer("503 Service Unavailable", b"refuse-me"))
    delivery = make_delivery_to(hostile.url("/refused"))

    assert run_to_the_end(delivery) == ["retry", "done"]

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_status_code == 503
    kinds = list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("error_kind"))
    assert kinds == [(ErrorKind.INTERNAL,), (ErrorKind.INTERNAL,)]
    assert hostile.counts["/refused"] == 2


def test_every_custom_header_value_is_masked_on_the_attempt_row(hostile):
    """whatever the header's name."""
    custom = {"X-Auth": "s3cret", "Authorization": "Bearer t0k3n", "X-Plain": "acme"}
    delivery = make_delivery_to(hostile.url("/hook"), headers=custom)

    assert attempt_delivery(delivery.pk, 1).action == "done"

    received = hostile.requests_to("/hook")[0]
    assert received.header("x-auth") == "s3cret"  # sent in clear, of course
    stored = DeliveryAttempt.objects.get(delivery=delivery).request_headers
    assert {name: stored[name] for name in custom} == dict.fromkeys(custom, "[redacted]")
    assert stored["webhook-id"] == str(delivery.event_id)
    assert stored["content-type"] == "application/json"
    assert stored["webhook-signature"].startswith("v1,")
