"""`send()` against receivers that misbehave, in this process: the total deadline (DNS lookup,
`Connection: close`, a trickled TLS handshake), interim 1xx answers, IDN and trailing-dot hosts
over real TLS, storable results, query strings kept out of errors and logs, and a `send()` that
never raises. Receivers are real sockets on 127.0.0.1 (tests/hostile.py); DNS answers for the
test names come from a stub table (tests/stubdns.py). The worker-level table is in
tests/test_hostile_worker.py.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from rest_framework.test import APIClient

from deliveries.models import DeliveryAttempt, DeliveryStatus, ErrorKind
from deliveries.services.attempts import attempt_delivery
from deliveries.transport import send
from subscriptions.models import EventType
from tests.certs import Pki, make_pki
from tests.factories import make_delivery_to, make_tenant_user
from tests.hostile import OK, Close, HostileServer, Pause, Send, Trickle
from tests.procs import free_port
from tests.stubdns import resolving
from webhooks_core import netguard

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "t0k3n-in-the-query"


def send_now(url: str, *, timeout: float = 2, connect_timeout: float = 1, headers=None):
    return send(
        url,
        b"{}",
        headers or {},
        connect_timeout=connect_timeout,
        timeout=timeout,
        max_body_bytes=4096,
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), ["hooks.test", "xn--bcher-kva.test"])


@pytest.fixture
def tls(pki, webhooks):
    """A TLS receiver whose certificate names hooks.test and bücher.test; the sender trusts its
    CA through WEBHOOKS["CA_BUNDLE"]."""
    webhooks(CA_BUNDLE=str(pki.ca))
    server = HostileServer(ssl_context=pki.server_context()).start()
    yield server
    server.stop()


# --- The total deadline ----------------------------------------------------------------------


def test_connection_close_answer_trickling_its_body_is_cut_at_the_deadline(hostile, webhooks):
    """headers at once with `Connection: close` and `Content-Length: 40`, then
    a body byte a second. http.client drops the connection's socket reference at once; the
    deadline keeps its own."""
    webhooks(TIMEOUT=4)
    head = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 40\r\n\r\n"
    hostile.script("/close", Send(head), Trickle(b"x" * 40, 1.0), Close())
    delivery = make_delivery_to(hostile.url("/close"))

    started = time.monotonic()
    assert attempt_delivery(delivery.pk, 1).action == "retry"
    elapsed = time.monotonic() - started

    # Floor: the 4 s deadline. Without it the body takes 40 s; the margin above the floor is
    # generous for a loaded machine.
    assert 3.9 <= elapsed < 4 + 15
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.error_kind == ErrorKind.TIMEOUT
    assert attempt.response_status == 200
    assert 3900 <= attempt.duration_ms < (4 + 15) * 1000
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING


@pytest.mark.parametrize("close", [False, True], ids=["keep-alive", "connection-close"])
def test_chunked_trickle_is_cut_at_the_deadline(hostile, close):
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
    head += (b"Connection: close\r\n" if close else b"") + b"\r\n"
    # 60 chunks half a second apart: 30 s without the deadline.
    hostile.script("/chunks", Send(head), *[Send(b"1\r\nx\r\n"), Pause(0.5)] * 60)

    started = time.monotonic()
    result = send_now(hostile.url("/chunks"), timeout=2)

    assert result.error_kind == ErrorKind.TIMEOUT
    assert 1.9 <= time.monotonic() - started < 2 + 15  # floor: the 2 s deadline


def test_slow_resolver_is_cut_at_the_deadline(hostile, webhooks):
    """A resolver that takes 60 s, TIMEOUT=4: cut at about 4 s, recorded as a
    timeout, the delivery waits for its retry."""
    webhooks(TIMEOUT=4)
    release = threading.Event()
    asked: list[str] = []

    def slow(host: str, port: int) -> list[str]:
        asked.append(host)
        release.wait(60)
        return ["127.0.0.1"]

    netguard.set_resolver(slow)
    try:
        delivery = make_delivery_to(f"http://slow.test:{hostile.port}/hook")
        started = time.monotonic()
        assert attempt_delivery(delivery.pk, 1).action == "retry"
        elapsed = time.monotonic() - started
    finally:
        release.set()
        netguard.set_resolver(None)

    assert asked == ["slow.test"]
    assert 3.9 <= elapsed < 4 + 15  # floor: the 4 s deadline; the resolver alone takes 60 s
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.error_kind == ErrorKind.TIMEOUT
    assert "did not resolve within 4 s" in attempt.error
    assert hostile.counts["/hook"] == 0


def test_trickled_tls_handshake_is_cut_at_the_deadline():
    """A TLS record header announcing 16 KB, then one byte every half second: each read gets a
    byte well within the socket timeout, and the handshake ends with the attempt's deadline."""
    server = HostileServer(on_connect=[Send(b"\x16\x03\x03\x40\x00"), Trickle(b"\x02" * 60, 0.5)])
    with server, resolving({"hooks.test": ["127.0.0.1"]}):
        started = time.monotonic()
        result = send_now(
            server.url("/hook", host="hooks.test", scheme="https"), timeout=2, connect_timeout=2
        )
        elapsed = time.monotonic() - started

    assert result.error_kind == ErrorKind.TIMEOUT
    assert 1.9 <= elapsed < 2 + 15  # floor: the 2 s deadline; the 60 bytes alone take 30 s


# --- Interim answers -------------------------------------------------------------------------


def test_early_hints_before_the_answer_are_skipped(hostile):
    """`103 Early Hints`, then `200 OK`: the 200 is the answer (RFC 9110
    §15.2), and the connection is reused for the next request."""
    hints = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    processing = b"HTTP/1.1 102 Processing\r\n\r\n"
    hostile.script("/hints", Send(hints + processing + hints), OK)

    first = send_now(hostile.url("/hints"))
    second = send_now(hostile.url("/hints"))

    for result in (first, second):
        assert result.ok, result
        assert result.status == 200
        assert result.body == "ok"
        assert "Link" not in result.headers
    assert hostile.counts["/hints"] == 2
    assert hostile.connections == 1


def test_early_hints_then_200_succeeds_in_one_attempt(hostile):
    hostile.script(
        "/hints",
        Send(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"),
        Pause(0.2),
        OK,
    )
    delivery = make_delivery_to(hostile.url("/hints"))

    assert attempt_delivery(delivery.pk, 1).action == "done"

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.last_status_code == 200
    assert DeliveryAttempt.objects.get(delivery=delivery).response_status == 200


def test_a_status_below_200_is_never_a_final_answer(hostile):
    """`101 Switching Protocols`, which we never asked for, is no answer: an invalid answer,
    retried; the connection is not reused."""
    hostile.script("/switch", Send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"))

    first = send_now(hostile.url("/switch"))
    second = send_now(hostile.url("/switch"))

    assert first.error_kind == second.error_kind == ErrorKind.PROTOCOL
    assert "interim" in first.error
    assert hostile.connections == 2
    delivery = make_delivery_to(hostile.url("/switch"))
    assert attempt_delivery(delivery.pk, 1).action == "retry"


# --- Hosts: IDN and trailing dots ------------------------------------------------------------


def test_idn_host_goes_out_as_a_labels(hostile):
    """the lookup, and the Host header, use the A-label."""
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    netguard.set_resolver(resolver)
    try:
        result = send_now(f"http://Bücher.test:{hostile.port}/hook?q=ä")
    finally:
        netguard.set_resolver(None)

    assert result.ok, result
    assert asked == ["xn--bcher-kva.test"]
    request = hostile.requests_to("/hook")[0]
    assert request.header("host") == f"xn--bcher-kva.test:{hostile.port}"
    assert request.head.startswith(b"POST /hook?q=%C3%A4 HTTP/1.1\r\n")


def test_cyrillic_host_never_makes_send_raise_and_is_delivered(hostile):
    """Today `send()` raised UnicodeEncodeError for a Cyrillic host and the delivery stayed
    `sending` with no attempt."""
    a_labels = "xn--e1afmkfd.xn--80akhbyknj4f"
    url = f"http://пример.испытание:{hostile.port}/hook"
    with resolving({a_labels: ["127.0.0.1"]}):
        result = send_now(url)
        assert result.ok, result
        delivery = make_delivery_to(url)
        assert attempt_delivery(delivery.pk, 1).action == "done"

    assert hostile.requests_to("/hook")[0].header("host") == f"{a_labels}:{hostile.port}"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempt_set.count() == 1


def test_api_keeps_the_url_as_typed(hostile, django_user_model):
    EventType.objects.create(name="order.created")
    api = APIClient()
    api.force_authenticate(make_tenant_user("owner", "default"))
    url = f"http://пример.испытание:{hostile.port}/hook"
    with resolving({"xn--e1afmkfd.xn--80akhbyknj4f": ["127.0.0.1"]}):
        created = api.post(
            "/api/subscriptions/", {"url": url, "event_types": ["order.created"]}, format="json"
        )
    assert created.status_code == 201, created.content
    shown = api.get(f"/api/subscriptions/{created.json()['id']}/").json()
    assert shown["url"] == url


@pytest.mark.parametrize(
    "host", ["snowman-☃.test", "a\u200db.test"], ids=["symbol", "joiner-without-context"]
)
def test_host_that_idna_refuses_is_an_invalid_url_not_an_exception(host):
    result = send_now(f"http://{host}/hook")
    assert result.error_kind == ErrorKind.INVALID_URL
    assert result.status is None


@pytest.mark.parametrize("host", ["hooks.test", "hooks.test."], ids=["name", "trailing-dot"])
def test_tls_matches_the_name_without_its_trailing_dot(tls, host):
    """`https://hooks.test.:PORT/` verifies against a certificate for
    hooks.test; SNI carries the name without the dot (RFC 6066 §3)."""
    with resolving({host: ["127.0.0.1"]}):
        result = send_now(tls.url("/hook", host=host))

    assert result.ok, result
    assert tls.server_names == ["hooks.test"]
    assert tls.requests_to("/hook")[0].header("host") == f"{host}:{tls.port}"


def test_tls_for_an_idn_host_uses_its_a_label(tls):
    with resolving({"xn--bcher-kva.test": ["127.0.0.1"]}):
        result = send_now(tls.url("/hook", host="bücher.test"))

    assert result.ok, result
    assert tls.server_names == ["xn--bcher-kva.test"]


def test_tls_trailing_dot_through_the_attempt_path(tls):
    delivery = make_delivery_to(tls.url("/hook", host="hooks.test."))
    with resolving({"hooks.test.": ["127.0.0.1"]}):
        assert attempt_delivery(delivery.pk, 1).action == "done"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED


def test_tls_still_refuses_a_certificate_for_another_name(tls):
    with resolving({"other.test": ["127.0.0.1"]}):
        result = send_now(tls.url("/hook", host="other.test"))
    assert result.error_kind == ErrorKind.CONNECTION
    assert "other.test" in result.error
    assert tls.counts["/hook"] == 0


def test_tls_still_refuses_a_ca_it_was_not_given(pki, webhooks):
    webhooks(CA_BUNDLE=None)  # the default: certifi's bundle, which does not hold our CA
    with (
        HostileServer(ssl_context=pki.server_context()) as server,
        resolving({"hooks.test": ["127.0.0.1"]}),
    ):
        result = send_now(server.url("/hook", host="hooks.test"))
        assert result.error_kind == ErrorKind.CONNECTION
        assert "CERTIFICATE_VERIFY_FAILED" in result.error
        assert server.counts["/hook"] == 0


# --- What is stored, and what is logged --------------------------------------------------------


def test_result_strings_are_storable(hostile):
    hostile.script(
        "/nul",
        Send(
            b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Nul: a\x00b\r\nX-Latin: \xfe\r\n\r\n"
            b"ok\x00ok\xff\xfe!"
        ),
    )
    result = send_now(hostile.url("/nul"))

    assert result.ok
    assert result.body == "ok\ufffdok\ufffd\ufffd!"
    assert result.headers["X-Nul"] == "a\ufffdb"
    assert result.headers["X-Latin"] == "\xfe"  # header bytes are Latin-1 (RFC 9110 §5.5)
    assert "\x00" not in repr(result.headers)


def test_query_string_stays_out_of_the_error_text():
    port = free_port()  # nothing listens there: a refused connection
    result = send_now(f"http://127.0.0.1:{port}/hook?token={TOKEN}")
    assert result.error_kind == ErrorKind.CONNECTION
    assert "/hook" in result.error
    assert TOKEN not in result.error


def test_query_string_stays_out_of_urllib3_logs(hostile, caplog):
    """urllib3 logs the URL at WARNING when a receiver's headers do not
    parse, and every request target at DEBUG."""
    hostile.script(
        "/malformed",
        Send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nnot a header line\r\nX-B: c\r\n\r\nok"),
    )
    with caplog.at_level(logging.DEBUG):
        result = send_now(hostile.url(f"/malformed?token={TOKEN}"))

    assert result.ok
    messages = [record.getMessage() for record in caplog.records]
    assert any("Failed to parse headers" in m and "?[redacted]" in m for m in messages), messages
    assert any('"POST /malformed?[redacted] HTTP/1.1" 200' in m for m in messages), messages
    assert not [m for m in messages if TOKEN in m]
    assert not [r for r in caplog.records if r.exc_text and TOKEN in r.exc_text]


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://[::1/hook", ErrorKind.INVALID_URL),
        (f"http://[::1/hook?token={TOKEN}", ErrorKind.INVALID_URL),
        ("http://127.0.0.1:99999/hook", ErrorKind.INVALID_URL),
        ("http:///hook", ErrorKind.INVALID_URL),
        ("http://" + "ä" * 70 + ".test/", ErrorKind.INVALID_URL),
        ("ftp://127.0.0.1/", ErrorKind.BLOCKED),
    ],
    ids=[
        "unclosed-ipv6",
        "unclosed-ipv6-with-query",
        "port-out-of-range",
        "no-host",
        "label-too-long",
        "scheme",
    ],
)
def test_send_never_raises_for_urls_that_cannot_be_sent_to(url, kind):
    result = send_now(url)
    assert result.error_kind == kind, result
    assert result.status is None
    assert TOKEN not in result.error
