"""How a delivery authenticates itself to its receiver, beside the signature: an OAuth2 bearer
token and a client certificate (mTLS), both per subscription.

`send_authenticated` is `transport.send` with those added. The token request and the delivery
share one deadline (`TIMEOUT`), and a 401 answer makes it fetch a new token and try once more
within the same attempt, as a token revoked early is the usual cause.
"""

from __future__ import annotations

import time
from typing import Any

from .adapter import ClientCertificate
from .models import ErrorKind
from .oauth2 import ClientCredentials, TokenUnavailable, bearer_token, forget
from .transport import SendResult, send


def client_certificate(subscription: Any) -> ClientCertificate | None:
    """The subscription's client certificate for mTLS, or None."""
    if subscription.tls_client_cert and subscription.tls_client_key:
        return ClientCertificate(subscription.tls_client_cert, subscription.tls_client_key)
    return None


def client_credentials(subscription: Any) -> ClientCredentials | None:
    """The subscription's OAuth2 client credentials, or None."""
    if not subscription.oauth2_token_url:
        return None
    return ClientCredentials(
        token_url=subscription.oauth2_token_url,
        client_id=subscription.oauth2_client_id,
        client_secret=subscription.oauth2_client_secret,
        scope=subscription.oauth2_scope,
    )


def send_authenticated(
    subscription: Any,
    body: bytes,
    headers: dict[str, str],
    *,
    connect_timeout: float,
    timeout: float,
    max_body_bytes: int,
) -> SendResult:
    """POST `body` to the subscription's URL as `transport.send` does, presenting its client
    certificate and its OAuth2 bearer token (added to `headers` as `authorization`, so the
    caller records that it was sent; the attempt row masks its value). Never raises.

    `timeout` (seconds) bounds the whole: token request(s) and delivery. When no token can be
    had, the result is the token endpoint's failure (`oauth2.TokenUnavailable`).
    """
    cert = client_certificate(subscription)
    credentials = client_credentials(subscription)
    if credentials is None:
        return send(
            subscription.url,
            body,
            headers,
            connect_timeout=connect_timeout,
            timeout=timeout,
            max_body_bytes=max_body_bytes,
            client_cert=cert,
        )
    started = time.monotonic()
    result = SendResult()
    for last_try in (False, True):
        if _left(started, timeout) <= 0:
            result = SendResult(
                error_kind=ErrorKind.TIMEOUT, error=f"No complete answer within {timeout:g} s."
            )
            break
        try:
            token = bearer_token(
                credentials, connect_timeout=connect_timeout, timeout=_left(started, timeout)
            )
        except TokenUnavailable as exc:
            result = exc.result
            break
        headers["authorization"] = f"Bearer {token}"
        left = _left(started, timeout)
        if left <= 0:
            result = SendResult(
                error_kind=ErrorKind.TIMEOUT,
                error=f"No time left to deliver after the OAuth2 token ({timeout:g} s).",
            )
            break
        result = send(
            subscription.url,
            body,
            headers,
            connect_timeout=connect_timeout,
            timeout=left,
            max_body_bytes=max_body_bytes,
            client_cert=cert,
        )
        if result.status != 401 or last_try:
            break
        forget(credentials)  # refused: maybe revoked early; one new token, once
    result.duration_ms = int((time.monotonic() - started) * 1000)
    return result


def _left(started: float, timeout: float) -> float:
    return timeout - (time.monotonic() - started)
