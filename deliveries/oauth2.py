"""OAuth2 client credentials (RFC 6749 §4.4) for receivers that want a bearer token.

The token is requested through `transport.send`, so the token endpoint gets exactly what a
receiver gets: the SSRF guard on the connected address, the egress proxy, the CA bundle, no
redirects and a total deadline. Tokens are cached in this process until shortly before they
expire (`expires_in`, RFC 6749 §5.1) and forgotten when a receiver answers 401, so the next
request fetches a new one. The cache is per process and in memory only: a token is a
credential, not something to put in a shared cache.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from .models import ErrorKind
from .transport import SendResult, send

# Seconds a token is trusted when the endpoint does not say (`expires_in` is only RECOMMENDED).
DEFAULT_LIFETIME = 300.0
# A token is renewed this early (seconds), so none expires between fetch and use.
EXPIRY_MARGIN = 30.0
# Bytes of a token answer read: an access token and its metadata, not a download.
MAX_TOKEN_RESPONSE_BYTES = 65536
MAX_CACHED_TOKENS = 10_000


@dataclass(frozen=True)
class ClientCredentials:
    """Where and how to ask for a token. `client_secret` is clear text (decrypted)."""

    token_url: str
    client_id: str
    client_secret: str
    scope: str = ""

    def __repr__(self) -> str:
        return f"ClientCredentials(token_url={self.token_url!r}, client_id={self.client_id!r})"

    @property
    def cache_key(self) -> tuple[str, str, str, str]:
        # A digest, not the secret: a changed secret is a new entry.
        digest = hashlib.sha256(self.client_secret.encode()).hexdigest()
        return (self.token_url, self.client_id, digest, self.scope)


class TokenUnavailable(Exception):
    """No token could be had; `result` says why, as a delivery attempt records it: the token
    endpoint's own failure kind (timeout, connection, blocked, invalid_url), or `connection`
    with the endpoint's status in the error when it answered without a usable token (the
    attempt is then retried on the schedule, in case the credentials are fixed meanwhile)."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(result.error)
        self.result = result


_lock = threading.Lock()
_tokens: dict[tuple[str, str, str, str], tuple[str, float]] = {}


def forget(credentials: ClientCredentials) -> None:
    """Drop the cached token of `credentials` (a receiver refused it)."""
    with _lock:
        _tokens.pop(credentials.cache_key, None)


def clear_cache() -> None:
    with _lock:
        _tokens.clear()


def bearer_token(credentials: ClientCredentials, *, connect_timeout: float, timeout: float) -> str:
    """A bearer token for `credentials`: the cached one while it lasts, else a new one.

    `timeout` (seconds) bounds the token request, lookup included. Raises TokenUnavailable.
    """
    now = time.monotonic()
    with _lock:
        cached = _tokens.get(credentials.cache_key)
    if cached is not None and cached[1] > now:
        return cached[0]
    token, lifetime = _request_token(credentials, connect_timeout=connect_timeout, timeout=timeout)
    with _lock:
        if len(_tokens) >= MAX_CACHED_TOKENS:
            _tokens.clear()  # crude but bounded; tokens are refetched on demand
        _tokens[credentials.cache_key] = (token, now + max(lifetime - EXPIRY_MARGIN, 0.0))
    return token


def _request_token(
    credentials: ClientCredentials, *, connect_timeout: float, timeout: float
) -> tuple[str, float]:
    form = {"grant_type": "client_credentials"}
    if credentials.scope:
        form["scope"] = credentials.scope
    # RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined for Basic authentication.
    basic = f"{quote(credentials.client_id, safe='')}:{quote(credentials.client_secret, safe='')}"
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "accept": "application/json",
        "authorization": "Basic " + base64.b64encode(basic.encode()).decode("ascii"),
    }
    result = send(
        credentials.token_url,
        urlencode(form).encode("ascii"),
        headers,
        connect_timeout=connect_timeout,
        timeout=timeout,
        max_body_bytes=MAX_TOKEN_RESPONSE_BYTES,
    )
    if not result.ok:
        kind = result.error_kind
        if kind == ErrorKind.HTTP_STATUS:
            kind = ErrorKind.CONNECTION  # the endpoint answered: no token, not the receiver's 4xx
        raise TokenUnavailable(_failed(result, kind, result.error or "no answer"))
    try:
        answer = json.loads(result.body)
        token = answer["access_token"]
        token_type = answer.get("token_type", "")
        lifetime = answer.get("expires_in", DEFAULT_LIFETIME)
        valid = (
            isinstance(token, str)
            and token
            and token.isascii()
            and token.isprintable()
            and isinstance(token_type, str)
            and token_type.lower() == "bearer"  # RFC 6750; case-insensitive (RFC 6749 §5.1)
            and isinstance(lifetime, int | float)
            and not isinstance(lifetime, bool)
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        valid = False
    if not valid:
        raise TokenUnavailable(
            _failed(result, ErrorKind.PROTOCOL, "the answer holds no bearer access_token")
        )
    return token, float(lifetime)


def _failed(result: SendResult, kind: str, why: str) -> SendResult:
    return SendResult(
        duration_ms=result.duration_ms,
        error_kind=kind,
        error=f"OAuth2 token endpoint: {why}",
    )
