from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings

from tests.hostile import HostileServer
from tests.procs import RedisServer, Worker, database_url_for_tests, free_port
from tests.receiver import Receiver


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "worker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


# The port of the session's Redis, chosen at start-up: the Celery app of this process points at
# it from the first test on, and the Redis behind it starts only when a test needs a broker.
BROKER_PORT = free_port()


def pytest_configure(config: pytest.Config) -> None:
    """Until a test asks for a broker nothing listens on the broker's port: a test that
    publishes without one finds the broker down (publishing copes, the sweep would send later),
    and never reaches a developer's own Redis on 6379. The URL never changes during the run, so
    no connection pool has to be reset when Redis starts."""
    from webhooks_project.celery import app

    app.conf.broker_url = settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{BROKER_PORT}/0"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private Redis on the broker's port, started the first time a test needs a broker and
    kept for the run. Unit tests start none."""
    from webhooks_project.celery import app

    server = RedisServer(port=BROKER_PORT).start()
    yield server
    app.pool.force_close_all()
    server.stop()


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    """The API's throttle counters start empty in every test (user ids repeat across tests), and
    so do the pipeline's per-process caches (a rolled-back tenant or schema must not linger)."""
    from django.core.cache import cache

    from deliveries.services import caches

    cache.clear()
    caches.clear()
    yield


@pytest.fixture
def broker(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The session's Redis, emptied before the test so no stale message runs into it."""
    from webhooks_project.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    yield redis_server


@pytest.fixture
def webhooks(settings):
    """`webhooks(KEY=value, ...)`: override single `WEBHOOKS` keys for this test."""

    def apply(**keys):
        settings.WEBHOOKS = {**settings.WEBHOOKS, **keys}

    return apply


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def browser(live_server, monkeypatch):
    """Headless Chromium (the system's) for pages of the live server; skips without Playwright."""
    from tests.browser import chromium

    with chromium(monkeypatch) as launched:
        yield launched


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    """A raw-socket receiver on loopback that answers from a script of byte-level steps."""
    server = HostileServer().start()
    yield server
    server.stop()


@pytest.fixture
def faulty(settings):
    """Small timings for the sweep in this process; the same dict goes to the worker."""

    def apply(**keys: object) -> dict:
        overrides = {
            "TIMEOUT": 3,
            "STALE_SENDING_AFTER": 4,
            "SWEEP_GRACE": 1,
            "MAX_IN_FLIGHT": None,
            **keys,
        }
        settings.WEBHOOKS = {**settings.WEBHOOKS, **overrides}
        return overrides

    return apply


@pytest.fixture
def start_worker(broker: RedisServer, transactional_db: None) -> Iterator:
    """Start real Celery workers (separate processes) on the test database and broker."""
    started: list[Worker] = []

    def start(**kwargs) -> Worker:
        kwargs.setdefault("broker_url", broker.url)
        worker = Worker(database_url=database_url_for_tests(), **kwargs).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def worker(start_worker) -> Worker:
    return start_worker()


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        "staff", "staff@example.com", "pw", is_staff=True, is_superuser=True
    )


@pytest.fixture
def staff_client(staff_user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(staff_user)
    return client


class NoticeRecorder:
    """A real receiver of `deliveries.signals.endpoint_notice`, connected while it lives."""

    def __init__(self) -> None:
        from deliveries import signals

        self.calls: list[dict] = []
        self.signal = signals.endpoint_notice
        self.signal.connect(self, weak=False, dispatch_uid="test-notice-recorder")

    def __call__(self, **kwargs) -> None:
        self.calls.append(kwargs)

    @property
    def kinds(self) -> list[str]:
        return [call["notice"].kind for call in self.calls]

    def close(self) -> None:
        self.signal.disconnect(dispatch_uid="test-notice-recorder")


@pytest.fixture
def recorder() -> Iterator[NoticeRecorder]:
    """Every endpoint notice signalled during the test."""
    rec = NoticeRecorder()
    yield rec
    rec.close()


@pytest.fixture
def contract_types(db: None) -> Iterator[str]:
    """`shop.order.placed` declared in code (tests/contract_types.py) and in the catalog, as
    after a migrate; forgotten afterwards. Yields the type's name."""
    from subscriptions.catalog import sync_catalog
    from subscriptions.contracts import contracts
    from tests import contract_types

    contract_types.declare(contracts)
    try:
        sync_catalog()
        yield contract_types.NAME
    finally:
        contracts.forget(contract_types.NAME)


@pytest.fixture
def portal(client):
    """A test client with tenant "acme"'s portal open through a link, as a person opens it.
    Test files that need more in the tenant (contacts, rivals, event types) define their own."""
    from subscriptions.models import Tenant
    from tests.portal_helpers import open_portal

    Tenant.objects.create(key="acme", name="Acme Inc.")
    open_portal(client, "acme")
    return client
