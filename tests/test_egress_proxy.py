"""The egress proxy (`WEBHOOKS["EGRESS_PROXY"]`): deliveries go through a real CONNECT proxy on
loopback, which is asked for the address the SSRF guard checked, never the name; TLS inside the
tunnel is still verified against the name; every refusal of the guard holds with the proxy on
(nothing reaches the proxy); the proxy itself may be on a private address."""

from __future__ import annotations

import pytest
from django.utils import timezone

from deliveries.models import Delivery, DeliveryAttempt, DeliveryStatus, ErrorKind, Event
from deliveries.services.attempts import attempt_delivery
from deliveries.transport import send
from tests.certs import Pki, make_client_cert, make_pki, mtls_server_context
from tests.factories import make_subscription
from tests.hostile import HostileServer
from tests.proxy import ConnectProxy
from tests.stubdns import resolving
from tests.test_ssrf import STUB_NAMES, TABLE

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), ["hooks.test"])


@pytest.fixture
def proxy(webhooks):
    server = ConnectProxy().start()
    # The proxy is on 127.0.0.1, a private address: allowed, it is the operator's own.
    webhooks(EGRESS_PROXY=server.url)
    yield server
    server.stop()


@pytest.fixture
def tls(pki, webhooks):
    webhooks(CA_BUNDLE=str(pki.ca))
    server = HostileServer(ssl_context=pki.server_context()).start()
    yield server
    server.stop()


def asked(proxy: ConnectProxy) -> list[str]:
    """The proxy's request lines without the HTTP version."""
    return [line.rsplit(" ", 1)[0] for line in proxy.request_lines]


def send_now(url: str, **kwargs):
    return send(url, b"{}", {}, connect_timeout=2, timeout=4, max_body_bytes=1000, **kwargs)


def test_https_goes_through_connect_to_the_checked_address(proxy, tls):
    with resolving({"hooks.test": ["127.0.0.1"]}):
        result = send_now(tls.url("/hook", host="hooks.test"))
    assert result.ok, result.error
    assert asked(proxy) == [f"CONNECT 127.0.0.1:{tls.port}"]
    assert tls.server_names == ["hooks.test"]  # SNI: the name
    assert tls.requests_to("/hook")[0].header("host") == f"hooks.test:{tls.port}"


def test_tls_through_the_tunnel_is_still_verified_against_the_name(proxy, tls):
    with resolving({"other.test": ["127.0.0.1"]}):
        result = send_now(tls.url("/hook", host="other.test"))
    assert result.error_kind == ErrorKind.CONNECTION
    assert "certificate" in result.error.lower() or "hostname" in result.error.lower()
    assert asked(proxy) == [f"CONNECT 127.0.0.1:{tls.port}"]
    assert tls.counts["/hook"] == 0


def test_plain_http_is_forwarded_with_the_checked_address_not_the_name(proxy, receiver):
    port = receiver.url().rsplit(":", 1)[1].split("/")[0]
    with resolving({"plain.test": ["127.0.0.1"]}):
        result = send_now(f"http://plain.test:{port}/hook")
    assert result.ok, result.error
    assert asked(proxy) == [f"POST http://127.0.0.1:{port}/hook"]
    assert receiver.requests_to("/hook")[0].headers["Host"] == f"plain.test:{port}"


@pytest.mark.parametrize(("host", "what"), TABLE, ids=[what for _, what in TABLE])
def test_every_ssrf_refusal_holds_with_the_proxy_on(proxy, webhooks, host, what):
    webhooks(ALLOW_PRIVATE_NETWORKS=False)
    with resolving({**STUB_NAMES, "localhost": ["127.0.0.1", "::1"]}):
        result = send_now(f"https://{host}:9/hook")
    assert result.error_kind == ErrorKind.BLOCKED, what
    assert proxy.request_lines == []  # refused here: the proxy was never asked


def test_a_delivery_with_mtls_and_v1a_goes_through_the_proxy(proxy, pki, webhooks):
    """The whole attempt path: proxy, client certificate and signature together."""
    webhooks(CA_BUNDLE=str(pki.ca))
    client = make_client_cert(pki.ca.parent, "proxied-sender")
    server = HostileServer(ssl_context=mtls_server_context(pki)).start()
    try:
        sub = make_subscription(
            server.url("/hook", host="hooks.test"),
            signature_scheme="v1a",
            tls_client_cert=client.cert,
            tls_client_key=client.key,
        )
        event = Event.objects.create(type="a.b", data={}, fanned_out_at=timezone.now())
        delivery = Delivery.objects.create(
            event=event, subscription=sub, next_attempt_at=timezone.now()
        )
        with resolving({"hooks.test": ["127.0.0.1"]}):
            attempt_delivery(delivery.pk, 1)
        assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.SUCCEEDED, (
            DeliveryAttempt.objects.get(delivery=delivery).error
        )
        assert asked(proxy) == [f"CONNECT 127.0.0.1:{server.port}"]
        assert server.client_subjects == ["proxied-sender"]
        signature = server.requests_to("/hook")[0].header("webhook-signature")
        assert signature.startswith("v1a,")
    finally:
        server.stop()
