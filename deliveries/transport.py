"""The one function that sends a webhook over HTTP: `send()`.

It never raises for what the network or the receiver does: every outcome, a refused connection
included, comes back as a `SendResult`. It keeps one `requests` adapter per process (per thread
under a thread pool) so connections are reused, ignores proxy variables from the environment,
never follows redirects, connects only to the address the SSRF guard checked, and enforces a
total deadline per attempt that a receiver trickling its answer byte by byte cannot stretch.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from subscriptions.netguard import BlockedDestination, Destination, resolve_destination

from .models import ErrorKind


@dataclass
class SendResult:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    duration_ms: int = 0
    error_kind: str = ErrorKind.NONE
    error: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.error_kind == ErrorKind.NONE
            and self.status is not None
            and 200 <= self.status < 300
        )


# --- Total deadline -------------------------------------------------------------------------
# requests' read timeout applies to each socket read, so a receiver sending one byte every few
# seconds would hold a worker forever. A single watchdog thread per process shuts down the
# socket of any attempt that outlives its deadline, which makes the blocked read fail at once.


class _Attempt:
    __slots__ = ("conn", "done")

    def __init__(self) -> None:
        self.conn: Any = None
        self.done = False

    def cut(self) -> None:
        sock = getattr(self.conn, "sock", None)
        if sock is not None and not self.done:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Attempt]] = []
        self._cond = threading.Condition()
        self._counter = itertools.count()
        self._pid = 0

    def watch(self, deadline: float, attempt: _Attempt) -> None:
        with self._cond:
            if self._pid != os.getpid():  # first use in this (possibly forked) process
                self._pid = os.getpid()
                self._heap = []
                threading.Thread(target=self._run, name="webhooks-deadline", daemon=True).start()
            heapq.heappush(self._heap, (deadline, next(self._counter), attempt))
            if self._heap[0][2] is attempt:  # only an earlier deadline needs the thread awake
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    _, _, attempt = heapq.heappop(self._heap)
                    attempt.cut()
                self._cond.wait(self._heap[0][0] - now if self._heap else None)


_watchdog = _Watchdog()
_local = threading.local()


class _TrackingPoolMixin:
    """Remembers which connection the current attempt uses, so the watchdog can cut it."""

    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        attempt = getattr(_local, "attempt", None)
        if attempt is not None:
            attempt.conn = conn
        return super()._make_request(conn, *args, **kwargs)  # type: ignore[misc]


class _HTTPPool(_TrackingPoolMixin, HTTPConnectionPool):
    pass


class _HTTPSPool(_TrackingPoolMixin, HTTPSConnectionPool):
    pass


class PinnedAdapter(HTTPAdapter):
    """Connects to the address the guard checked, while TLS still verifies the host name."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        destination: Destination | None = getattr(request, "destination", None)
        if destination is not None:
            host_params["host"] = destination.address
            if destination.scheme == "https":
                pool_kwargs["server_hostname"] = destination.host
                pool_kwargs["assert_hostname"] = destination.host
        return host_params, pool_kwargs


def get_adapter() -> PinnedAdapter:
    """This process's (this thread's, under a thread pool) adapter and its connection pools."""
    adapter = getattr(_local, "adapter", None)
    if adapter is None or getattr(_local, "pid", None) != os.getpid():
        adapter = PinnedAdapter(pool_connections=64, pool_maxsize=16, max_retries=0)
        _local.adapter = adapter
        _local.pid = os.getpid()
    return adapter


@functools.lru_cache(maxsize=4096)
def _normalized_url(url: str) -> str:
    # What requests would send for this URL (IDNA host, quoted path). Subscriptions post to the
    # same few URLs over and over: parsing each once is a fifth of a local request's cost.
    request = requests.PreparedRequest()
    request.prepare_url(url, None)
    return str(request.url)


def _request(url: str, body: bytes, headers: dict[str, str], destination: Destination):
    """The request as `requests.Request(...).prepare()` builds it for a URL without credentials,
    cookies or hooks, which a subscription URL cannot have, without redoing that work each time.
    No Session either: nothing of one response (a cookie) may leak into the next delivery."""
    request = requests.PreparedRequest()
    request.method = "POST"
    request.url = _normalized_url(url)
    request.headers = CaseInsensitiveDict(headers)
    request.headers["Content-Length"] = str(len(body))
    request.headers["Host"] = destination.host_header
    request.body = body
    request.destination = destination  # type: ignore[attr-defined]
    return request


def _decode(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def send(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    connect_timeout: float,
    timeout: float,
    max_body_bytes: int,
) -> SendResult:
    """POST `body` to `url`; `timeout` bounds the whole attempt, connection included."""
    started = time.monotonic()
    result = SendResult()
    attempt = _Attempt()
    try:
        destination = resolve_destination(url)
    except BlockedDestination as exc:
        result.error_kind, result.error = ErrorKind.BLOCKED, str(exc)
        return result
    request = _request(url, body, headers, destination)
    _local.attempt = attempt
    _watchdog.watch(started + timeout, attempt)
    try:
        response = get_adapter().send(
            request, stream=True, timeout=(connect_timeout, timeout), verify=True, proxies={}
        )
        try:
            result.status = response.status_code
            result.headers = dict(response.headers)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(chunk_size=8192):
                chunks.append(chunk)
                size += len(chunk)
                if size > max_body_bytes:
                    break
            result.body = _decode(b"".join(chunks)[:max_body_bytes])
        finally:
            response.close()
    except requests.exceptions.Timeout as exc:
        result.error_kind, result.error = ErrorKind.TIMEOUT, _short(exc)
    except requests.exceptions.InvalidURL as exc:
        result.error_kind, result.error = ErrorKind.INVALID_URL, _short(exc)
    except (requests.exceptions.RequestException, OSError) as exc:
        result.error_kind, result.error = ErrorKind.CONNECTION, _short(exc)
    finally:
        attempt.done = True
        _local.attempt = None
        result.duration_ms = int((time.monotonic() - started) * 1000)
    if result.error_kind == ErrorKind.CONNECTION and result.duration_ms >= timeout * 1000:
        # The watchdog cut the socket: report it as the timeout it is.
        result.error_kind = ErrorKind.TIMEOUT
        result.error = f"No complete answer within {timeout:g} s."
    if (
        result.status is not None
        and result.error_kind == ErrorKind.NONE
        and not (200 <= result.status < 300)
    ):
        result.error_kind = ErrorKind.HTTP_STATUS
        result.error = f"HTTP {result.status}"
    return result


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
