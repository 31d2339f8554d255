"""The one function that sends a webhook over HTTP: `send()`.

It never raises: every outcome, a refused connection, a malformed answer and our own failure
included, comes back as a `SendResult`, and what that result holds is safe to store (no NUL, no
lone surrogate: `webhooks_core.text.clean_text`). It keeps one `requests` adapter per process
(per thread under a thread pool) so connections are reused, ignores proxy variables from the
environment (it goes through `WEBHOOKS["EGRESS_PROXY"]` alone, asking it for the checked
address), presents a client certificate when given one (mTLS), never follows redirects,
connects only to the address the SSRF guard checked, and
enforces a total deadline per attempt, DNS lookup included, that a receiver trickling its
answer byte by byte cannot stretch (`deliveries.deadline`).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3.exceptions
from requests.structures import CaseInsensitiveDict

from webhooks_core.netguard import (
    BlockedDestination,
    Destination,
    InvalidURL,
    ResolutionTimeout,
    resolve_destination,
)
from webhooks_core.text import clean_text

from .adapter import ClientCertificate, get_adapter
from .conf import webhook_settings
from .deadline import deadline
from .models import ERROR_MAX_CHARS, ErrorKind


@dataclass
class SendResult:
    """What one attempt got: `status` (None without an answer), the answer's `headers` and
    `body` (decoded as UTF-8 with replacement, at most `max_body_bytes` bytes of it), how long
    it took (`duration_ms`, milliseconds) and, if it did not end with a 2xx answer, why
    (`error_kind`, one of `ErrorKind`, and `error`, at most 500 characters)."""

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


class _NoTimeLeft(TimeoutError):
    pass


class _Limits(NamedTuple):
    connect_timeout: float  # seconds
    timeout: float  # seconds, the whole attempt
    max_body_bytes: int


@functools.lru_cache(maxsize=4096)
def _normalized_url(url: str, netloc: str | None) -> str:
    # What requests would send for this URL (quoted path), with the host in its wire form when
    # the URL is not ASCII. Subscriptions post to the same few URLs over and over: parsing each
    # once is a fifth of a local request's cost.
    if netloc is not None:
        url = urlunsplit(urlsplit(url)._replace(netloc=netloc))
    request = requests.PreparedRequest()
    request.prepare_url(url, None)
    return str(request.url)


def _request(
    url: str, body: bytes, headers: dict[str, str], destination: Destination
) -> requests.PreparedRequest:
    """The request as `requests.Request(...).prepare()` builds it for a URL without credentials,
    cookies or hooks, which a subscription URL cannot have, without redoing that work each time.
    No Session either: nothing of one response (a cookie) may leak into the next delivery."""
    request = requests.PreparedRequest()
    request.method = "POST"
    request.url = _normalized_url(url, None if url.isascii() else destination.host_header)
    request.headers = CaseInsensitiveDict(headers)
    request.headers["Content-Length"] = str(len(body))
    request.headers["Host"] = destination.host_header
    request.body = body
    # Carried on the request to the adapter, which connects to the checked address only
    # (requests has no field for it).
    request.destination = destination  # type: ignore[attr-defined]
    return request


def send(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    connect_timeout: float,
    timeout: float,
    max_body_bytes: int,
    client_cert: ClientCertificate | None = None,
) -> SendResult:
    """POST `body` to `url` with `headers`; describe what happened. Never raises.

    `client_cert` is presented to an https receiver that asks for one (mutual TLS).

    `timeout` (seconds) bounds the whole attempt: DNS lookup, connection, TLS handshake,
    request and answer. `connect_timeout` (seconds) bounds the TCP connect within it. At most
    `max_body_bytes` of the answer's body are read. Interim 1xx answers are skipped (RFC 9110
    §15.2). Header names and values, body and error text are cleaned for storage, and the
    URL's query string (which may carry a token) is left out of the error text.
    """
    started = time.monotonic()
    result = SendResult()
    try:
        with deadline(timeout) as attempt:
            try:
                limits = _Limits(connect_timeout, timeout, max_body_bytes)
                _exchange(url, body, headers, limits, result, client_cert)
                if attempt.expired:
                    # Cut while reading a body that ends with the connection: what looked like
                    # its end was our own shutdown.
                    raise _NoTimeLeft(f"No complete answer within {timeout:g} s.")
            except Exception as exc:
                result.error_kind = _kind(exc, timed_out=attempt.expired)
                result.error = _describe(exc, timeout, timed_out=attempt.expired)
    except Exception as exc:  # the deadline machinery itself: our failure, not the receiver's
        result.error_kind = ErrorKind.INTERNAL
        result.error = _describe(exc, timeout, timed_out=False)
    result.duration_ms = int((time.monotonic() - started) * 1000)
    if result.error_kind == ErrorKind.NONE and result.status is not None:
        if result.status < 200:
            # http.client hands over a 101 as an answer; no final answer came (RFC 9110 §15.2).
            result.error_kind = ErrorKind.PROTOCOL
            result.error = f"HTTP {result.status} is an interim answer; no final answer came."
        elif result.status >= 300:
            result.error_kind = ErrorKind.HTTP_STATUS
            result.error = f"HTTP {result.status}"
    return _storable(result, url)


def _exchange(
    url: str,
    body: bytes,
    headers: dict[str, str],
    limits: _Limits,
    result: SendResult,
    client_cert: ClientCertificate | None = None,
) -> None:
    connect_timeout, timeout, max_body_bytes = limits
    started = time.monotonic()
    destination = resolve_destination(url, timeout=timeout)
    left = timeout - (time.monotonic() - started)
    if left <= 0:
        raise _NoTimeLeft(f"No time left to connect after the lookup ({timeout:g} s).")
    request = _request(url, body, headers, destination)
    proxy = webhook_settings.EGRESS_PROXY
    response = get_adapter(webhook_settings.CA_BUNDLE).send(
        request,
        stream=True,
        timeout=(min(connect_timeout, left), timeout),
        verify=True,
        # Our adapter's own value (adapter.ClientCertificate), read by its pool-key hook;
        # requests types `cert` as a file path or a pair of them.
        cert=client_cert,  # type: ignore[arg-type]
        # Never the environment's proxy variables; the configured proxy for both schemes.
        proxies={"http": proxy, "https": proxy} if proxy else {},
    )
    try:
        result.status = response.status_code
        result.headers = dict(response.headers)
        if response.status_code < 200:
            return  # not an answer: the connection is closed below, never reused
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=8192):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_body_bytes:
                break  # the rest is not read: closing the response closes the connection
        result.body = b"".join(chunks)[:max_body_bytes].decode("utf-8", errors="replace")
    finally:
        response.close()


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception it wraps: causes, contexts, and the exceptions requests and
    urllib3 keep in `args` or `reason`."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        nested.extend(current.args)
        stack.extend(item for item in nested if isinstance(item, BaseException))


def _kind(exc: BaseException, *, timed_out: bool) -> str:
    """The ErrorKind of an exception raised while sending: decided by types, never by text."""
    if timed_out:  # the deadline cut the socket: whatever broke next, the attempt timed out
        return ErrorKind.TIMEOUT
    if isinstance(exc, InvalidURL | requests.exceptions.InvalidURL):
        return ErrorKind.INVALID_URL
    if isinstance(exc, BlockedDestination):
        return ErrorKind.BLOCKED
    causes = list(_causes(exc))
    if any(
        isinstance(c, TimeoutError | urllib3.exceptions.TimeoutError)
        # urllib3 derives a refused connection from its connect-timeout class (compatibility)
        and not isinstance(c, urllib3.exceptions.NewConnectionError)
        for c in causes
    ):
        return ErrorKind.TIMEOUT  # socket timeouts, the lookup's and requests' own
    for cause in causes:
        if isinstance(cause, urllib3.exceptions.InvalidChunkLength):
            return ErrorKind.PROTOCOL
        if isinstance(cause, http.client.IncompleteRead | http.client.RemoteDisconnected):
            return ErrorKind.CONNECTION  # the answer was cut short, not malformed
        if isinstance(
            cause,
            http.client.HTTPException | urllib3.exceptions.DecodeError,
        ):
            return ErrorKind.PROTOCOL  # a status line, header or encoding we cannot read
    if any(
        isinstance(c, OSError | requests.RequestException | urllib3.exceptions.HTTPError)
        for c in causes
    ):
        return ErrorKind.CONNECTION
    return ErrorKind.INTERNAL  # our own failure: a bug, or data we could not encode


def _describe(exc: BaseException, timeout: float, *, timed_out: bool) -> str:
    if isinstance(exc, BlockedDestination | ResolutionTimeout | _NoTimeLeft):
        return str(exc)  # our own words
    if timed_out:
        return f"No complete answer within {timeout:g} s."
    return f"{type(exc).__name__}: {exc}"


def _storable(result: SendResult, url: str) -> SendResult:
    """`result` with every string the receiver controls cleaned (NUL and lone surrogates
    replaced) and the URL's query string left out of the error text."""
    result.body = clean_text(result.body)
    if result.headers:
        result.headers = {clean_text(k): clean_text(v) for k, v in result.headers.items()}
    if result.error:
        error = result.error
        if "?" in url:
            for query in _query_forms(url):
                error = error.replace(query, "[redacted]")
        result.error = clean_text(error)[:ERROR_MAX_CHARS]
    return result


def _query_forms(url: str) -> set[str]:
    """The URL's query string as written and as requests quoted it for the request line."""
    forms = {url.partition("?")[2].partition("#")[0]}
    with contextlib.suppress(Exception):  # a URL requests cannot parse reached no request line
        forms.add(urlsplit(_normalized_url(url, None)).query)
    return {form for form in forms if form}
