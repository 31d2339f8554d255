"""The SSRF guard: every non-public destination is refused when a subscription is created or
changed, and again when a delivery is sent; the address checked is the address connected to.

Nothing here connects anywhere but 127.0.0.1: in-process sends run under a socket guard that
records every connect and refuses any other address; the worker tests only use destinations
the guard refuses before connecting.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from deliveries.models import Delivery, DeliveryStatus, ErrorKind
from deliveries.services import publish
from deliveries.transport import send
from subscriptions.models import EventType, Subscription
from tests.factories import make_subscription, make_tenant_user
from tests.procs import wait_until
from tests.receiver import Reply
from tests.stubdns import resolving
from webhooks_core import netguard
from webhooks_core.netguard import BlockedDestination, resolve_destination

PUBLIC_V4 = "93.184.215.14"
# Names answered by the stub resolver (the worker process resolves only literals and localhost).
STUB_NAMES = {
    "public.example.com": [PUBLIC_V4],
    "metadata.example.com": ["169.254.169.254"],
    "internal.example.com": ["10.1.2.3"],
    "mixed.example.com": [PUBLIC_V4, "192.168.0.10"],
    "ula.example.com": ["fd00::1"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
}

# (host as written in the URL, what it is). Literals and localhost need no stub.
LITERAL_TABLE = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback range"),
    ("[::1]", "IPv6 loopback"),
    ("localhost", "loopback by name"),
    ("10.0.0.1", "private 10/8"),
    ("172.16.5.4", "private 172.16/12"),
    ("192.168.1.1", "private 192.168/16"),
    ("169.254.169.254", "link-local: cloud metadata"),
    ("[fe80::1]", "IPv6 link-local"),
    ("100.64.0.1", "CGNAT 100.64/10"),
    ("224.0.0.1", "multicast"),
    ("[ff02::1]", "IPv6 multicast"),
    ("[ff0e::1]", "IPv6 global-scope multicast"),
    ("240.0.0.1", "reserved 240/4"),
    ("255.255.255.255", "broadcast"),
    ("0.0.0.0", "unspecified"),
    ("[::]", "IPv6 unspecified"),
    ("192.0.2.1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("[2001:db8::1]", "IPv6 documentation"),
    ("[::ffff:127.0.0.1]", "IPv4-mapped loopback"),
    ("[::ffff:169.254.169.254]", "IPv4-mapped metadata"),
    ("[::ffff:0:a00:1]", "IPv4-translated private"),
    ("[::127.0.0.1]", "IPv4-compatible loopback"),
    ("[64:ff9b::7f00:1]", "NAT64 of loopback"),
    ("[64:ff9b::a9fe:a9fe]", "NAT64 of metadata"),
    ("[64:ff9b:1::808:808]", "local-use NAT64"),
    ("[2002:7f00:1::1]", "6to4 of loopback"),
    ("[2002:a9fe:a9fe::1]", "6to4 of metadata"),
    ("[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "Teredo"),
    ("[fc00::1]", "ULA fc00::/7"),
    ("[fd12:3456::1]", "ULA fd00::/8"),
    ("2130706433", "decimal integer 127.0.0.1"),
    ("0x7f.1", "hex and short form"),
    ("127.1", "short form"),
    ("0177.0.0.1", "octal"),
    ("0x7f000001", "hex integer"),
    ("017700000001", "octal integer"),
    ("127.0.0.1.", "trailing dot"),
    ("0xa9.0xfe.0xa9.0xfe", "hex metadata"),
]
NAME_TABLE = [
    ("metadata.example.com", "name resolving to the metadata address"),
    ("internal.example.com", "name resolving to a private address"),
    ("mixed.example.com", "one public and one private answer"),
    ("ula.example.com", "name resolving to a ULA"),
    ("mapped.example.com", "name resolving to IPv4-mapped loopback"),
]
TABLE = LITERAL_TABLE + NAME_TABLE
PRIVATE_OFF = {"ALLOW_PRIVATE_NETWORKS": False}


@pytest.fixture(autouse=True)
def no_real_dns():
    with resolving({**STUB_NAMES, "localhost": ["127.0.0.1", "::1"]}):
        yield


@pytest.fixture
def guard_off(settings):
    """This process refuses private networks (the test settings allow them)."""
    with override_settings(WEBHOOKS={**settings.WEBHOOKS, **PRIVATE_OFF}):
        yield


@pytest.fixture
def connects(monkeypatch):
    """Every outgoing connect of this process, recorded; anything but loopback is refused."""
    seen: list[str] = []
    real_connect = socket.socket.connect

    def recording_connect(sock, address):
        seen.append(address[0])
        if address[0] != "127.0.0.1":
            raise ConnectionRefusedError(f"test guard: no connection to {address[0]}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    return seen


def send_now(url: str):
    return send(url, b"{}", {}, connect_timeout=1, timeout=2, max_body_bytes=1000)


# --- The guard itself -------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "what"), TABLE, ids=[what for _, what in TABLE])
def test_guard_refuses(guard_off, host, what):
    with pytest.raises(BlockedDestination, match="not a public address"):
        resolve_destination(f"https://{host}/hook")


ADDRESS_LITERALS = [(h, w) for h, w in LITERAL_TABLE if h != "localhost"]


@pytest.mark.parametrize(("host", "what"), ADDRESS_LITERALS, ids=[w for _, w in ADDRESS_LITERALS])
def test_literals_never_reach_the_resolver(guard_off, host, what):
    """A resolver that calls everything public cannot give an address literal another meaning."""
    asked: list[str] = []

    def liar(name: str, port: int) -> list[str]:
        asked.append(name)
        return [PUBLIC_V4]

    netguard.set_resolver(liar)
    with pytest.raises(BlockedDestination):
        resolve_destination(f"https://{host}/hook")
    assert asked == []


@pytest.mark.parametrize(
    "url",
    [
        "https://public.example.com/hook",
        f"https://{PUBLIC_V4}/hook",
        "https://[2606:4700::1111]/hook",
        "https://[64:ff9b::808:808]/hook",  # NAT64 of a public address
        "https://[2002:808:808::1]/hook",  # 6to4 of a public address
        "https://1572395790/hook",  # 93.184.215.14 as an integer: odd but public
    ],
)
def test_guard_allows_public_destinations_and_pins_the_address(guard_off, url):
    destination = resolve_destination(url)
    assert ipaddress.ip_address(destination.address).is_global


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://1.2.3.4.5/hook", "not a valid address"),
        ("https://[fe80::1%25eth0]/hook", "not a public address"),
        ("https://user:pw@public.example.com/", "credentials"),
        ("ftp://public.example.com/", "scheme"),
        ("https://nowhere.example.com/", "does not resolve"),
    ],
)
def test_guard_refuses_malformed_destinations(guard_off, url, message):
    with pytest.raises(BlockedDestination, match=message):
        resolve_destination(url)


# --- At create and update time ----------------------------------------------------------------


@pytest.fixture
def owner_api(django_user_model):
    EventType.objects.create(name="order.created")
    client = APIClient()
    client.force_authenticate(make_tenant_user("owner", "default"))
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(("host", "what"), TABLE, ids=[what for _, what in TABLE])
def test_api_refuses_at_create(owner_api, guard_off, host, what):
    body = {"url": f"https://{host}/hook", "event_types": ["order.created"]}
    response = owner_api.post("/api/subscriptions/", body, format="json")
    assert response.status_code == 400
    assert "url" in response.json()
    assert not Subscription.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("host", "what"), TABLE, ids=[what for _, what in TABLE])
def test_api_refuses_at_update(owner_api, guard_off, host, what):
    body = {"url": "https://public.example.com/hook", "event_types": ["order.created"]}
    created = owner_api.post("/api/subscriptions/", body, format="json")
    assert created.status_code == 201
    url = f"/api/subscriptions/{created.json()['id']}/"
    response = owner_api.patch(url, {"url": f"https://{host}/hook"}, format="json")
    assert response.status_code == 400 and "url" in response.json()
    assert Subscription.objects.get().url == "https://public.example.com/hook"


@pytest.mark.django_db
def test_api_allows_loopback_when_private_networks_are_allowed(owner_api):
    body = {"url": "https://127.0.0.1:8443/hook", "event_types": ["order.created"]}
    assert owner_api.post("/api/subscriptions/", body, format="json").status_code == 201


# --- At send time -----------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "what"), TABLE, ids=[what for _, what in TABLE])
def test_send_refuses_before_connecting(guard_off, connects, host, what):
    result = send_now(f"https://{host}:9/hook")
    assert result.error_kind == ErrorKind.BLOCKED
    assert result.status is None
    assert connects == []


@pytest.mark.integration
def test_worker_records_blocked_attempts_and_does_not_retry(start_worker):
    """Rows written directly (no serializer): the worker's own guard refuses each one."""
    start_worker(overrides=PRIVATE_OFF)
    literal_hosts = [host for host, _ in LITERAL_TABLE]
    subs = {make_subscription(f"http://{host}:9/hook").pk: host for host in literal_hosts}

    event = publish("order.created", {"n": 1})

    finished = [DeliveryStatus.FAILED, DeliveryStatus.SUCCEEDED, DeliveryStatus.RETRYING]
    assert wait_until(
        lambda: Delivery.objects.filter(event=event, status__in=finished).count() == len(subs),
        timeout=30,
    )
    for delivery in Delivery.objects.filter(event=event).prefetch_related("attempt_set"):
        host = subs[delivery.subscription_id]
        assert delivery.status == DeliveryStatus.FAILED, host
        assert delivery.attempts == 1, host  # not retried
        attempt = delivery.attempt_set.get()
        assert attempt.error_kind == ErrorKind.BLOCKED, host
        assert attempt.response_status is None
        assert "not a public address" in attempt.error
        assert delivery.next_attempt_at is None


# --- Rebinding and redirects -----------------------------------------------------------------


@pytest.mark.django_db
def test_public_then_loopback_answer_never_connects_to_loopback(owner_api, guard_off, connects):
    answers = iter([[PUBLIC_V4], ["127.0.0.1"], ["127.0.0.1"]])
    asked: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return next(answers)

    netguard.set_resolver(rebinding)
    body = {"url": "https://rebind.example.com/hook", "event_types": ["order.created"]}
    # Create: the name is public now, so it is accepted...
    assert owner_api.post("/api/subscriptions/", body, format="json").status_code == 201
    # ...but at send time it resolves to loopback, is refused, and nothing connects.
    result = send_now("https://rebind.example.com/hook")
    assert result.error_kind == ErrorKind.BLOCKED
    assert connects == []
    assert asked == ["rebind.example.com"] * 2


def test_one_send_resolves_once_and_connects_to_the_checked_address(guard_off, connects):
    answers = iter([[PUBLIC_V4], ["127.0.0.1"]])
    asked: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return next(answers)

    netguard.set_resolver(rebinding)
    result = send_now("http://rebind.example.com:8080/hook")
    # The socket guard refused the public address, so the attempt is a connection error; the
    # point is where it tried to go: the address checked, never a second lookup's loopback.
    assert result.error_kind == ErrorKind.CONNECTION
    assert connects and set(connects) == {PUBLIC_V4}
    assert asked == ["rebind.example.com"]


def test_redirect_to_metadata_is_not_followed_in_process(receiver, connects):
    location = "http://169.254.169.254/latest/meta-data/"
    receiver.script("/moved", Reply(302, headers={"Location": location}))

    result = send_now(receiver.url("/moved"))

    assert result.status == 302
    assert result.headers["Location"] == location
    assert result.error_kind == ErrorKind.HTTP_STATUS
    assert set(connects) == {"127.0.0.1"}
    assert receiver.counts["/moved"] == 1


@pytest.mark.integration
def test_redirect_to_metadata_is_not_followed_by_the_worker(worker, receiver):
    receiver.script("/moved", Reply(302, headers={"Location": "http://169.254.169.254/"}))
    make_subscription(receiver.url("/moved"))

    event = publish("order.created", {})

    assert wait_until(
        lambda: Delivery.objects.filter(event=event, status=DeliveryStatus.FAILED).exists(),
        timeout=20,
    )
    delivery = Delivery.objects.get(event=event)
    assert delivery.attempts == 1  # a redirect is an answer, final, and not followed
    attempt = delivery.attempt_set.get()
    assert attempt.response_status == 302
    assert attempt.response_headers["Location"] == "http://169.254.169.254/"
    assert receiver.counts["/moved"] == 1
