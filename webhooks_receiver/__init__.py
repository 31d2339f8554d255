"""Verify incoming Standard Webhooks deliveries (https://www.standardwebhooks.com/).

For the people who *receive* webhooks. Standard library only, so it imports in any Python
program: nothing here needs our Django apps in `INSTALLED_APPS`, a database or Celery. Django
views get a decorator and a base view in `webhooks_receiver.django`.

    from webhooks_receiver import verify, WebhookError

    try:
        event = verify(secret, body, headers)
    except WebhookError as exc:
        return exc.status, str(exc)  # 400 malformed, 401 bad signature or stale timestamp

A subscription signing with `v1a` (ed25519) is verified with its `whpk_...` public key in place
of the secret (`verify(public_key, body, headers)`); that needs the `cryptography` package,
imported only then.

Kept out of the `deliveries` package on purpose: a receiver's own project may well have a
package called `deliveries` (shipping), which would shadow ours and break the import.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "DEFAULT_TOLERANCE",
    "InvalidSignature",
    "MalformedWebhook",
    "StaleTimestamp",
    "WebhookError",
    "WebhookEvent",
    "verify",
    "verify_event",
]

#: Seconds a delivery's `webhook-timestamp` may differ from the receiver's clock, either way.
DEFAULT_TOLERANCE = 300
SECRET_PREFIX = "whsec_"
PUBLIC_KEY_PREFIX = "whpk_"

Secret = str | bytes
Secrets = Secret | Iterable[Secret]


class WebhookError(Exception):
    """A delivery that must be refused; `status` is the HTTP status to answer with."""

    status = 400


class MalformedWebhook(WebhookError):
    """Missing or unparsable headers, or a body that is not a JSON object (answer 400)."""

    status = 400


class InvalidSignature(WebhookError):
    """No `webhook-signature` entry matches any of the receiver's secrets (answer 401)."""

    status = 401


class StaleTimestamp(WebhookError):
    """`webhook-timestamp` is further than the tolerance from now, either way (answer 401).

    A delivery captured once and sent again later (a replay) is refused by this check; a
    legitimate retry is signed again with a fresh timestamp, so it passes.
    """

    status = 401


@dataclass(frozen=True)
class WebhookEvent:
    """A verified delivery: the parsed body and the identifying headers."""

    id: str
    timestamp: datetime
    payload: dict[str, Any]
    body: bytes = field(repr=False)

    @property
    def type(self) -> str | None:
        return self.payload.get("type")

    @property
    def data(self) -> Any:
        return self.payload.get("data")


def verify(
    secret: Secrets,
    body: bytes | str,
    headers: Mapping[str, str],
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a delivery's signature and timestamp; return its parsed JSON body.

    `secret` is the subscription's `whsec_...` string (or the raw key bytes), its `whpk_...`
    public key for `v1a` (ed25519) signatures, or several of these while you rotate or move to
    v1a: any one matching signature is enough. `headers` is any mapping; names are
    matched case-insensitively. Raises `MalformedWebhook`, `InvalidSignature` or
    `StaleTimestamp` (all `WebhookError`, each with the HTTP `status` to answer).
    """
    return verify_event(secret, body, headers, tolerance, now=now).payload


def verify_event(
    secret: Secrets,
    body: bytes | str,
    headers: Mapping[str, str],
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> WebhookEvent:
    """`verify`, returning a `WebhookEvent` (id, timestamp, payload, raw body)."""
    keys, public_keys = _keys(secret)
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    lowered = {str(name).lower(): value for name, value in headers.items()}
    msg_id = _header(lowered, "webhook-id")
    stamp = _header(lowered, "webhook-timestamp")
    signatures = _header(lowered, "webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise MalformedWebhook("webhook-timestamp is not an integer number of seconds.") from None

    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise StaleTimestamp(
            f"webhook-timestamp is {int(current - timestamp)} s old; the tolerance is "
            f"{tolerance:g} s."
        )
    if timestamp > current + tolerance:
        raise StaleTimestamp(
            f"webhook-timestamp is {int(timestamp - current)} s in the future; the tolerance "
            f"is {tolerance:g} s."
        )

    signed = b"%s.%d.%s" % (msg_id.encode("utf-8"), timestamp, raw)
    expected = [hmac.new(key, signed, hashlib.sha256).digest() for key in keys]
    if not (_any_match(signatures, expected) | _any_ed25519_match(signatures, public_keys, signed)):
        raise InvalidSignature("No webhook-signature entry matches the secret.")

    try:
        payload = json.loads(raw)
    except ValueError:
        raise MalformedWebhook("The body is not JSON.") from None
    if not isinstance(payload, dict):
        raise MalformedWebhook("The body is not a JSON object.")
    return WebhookEvent(
        id=msg_id,
        timestamp=datetime.fromtimestamp(timestamp, tz=UTC),
        payload=payload,
        body=raw,
    )


def _keys(secret: Secrets) -> tuple[list[bytes], list[bytes]]:
    """The HMAC keys (`whsec_`, bytes) and the raw ed25519 public keys (`whpk_`) given."""
    candidates = [secret] if isinstance(secret, str | bytes) else list(secret)
    if not candidates:
        raise ValueError("No webhook secret given.")
    hmac_keys: list[bytes] = []
    public_keys: list[bytes] = []
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.startswith(PUBLIC_KEY_PREFIX):
            public_keys.append(_public_key(candidate))
        else:
            hmac_keys.append(_key(candidate))
    return hmac_keys, public_keys


def _public_key(value: str) -> bytes:
    try:
        key = base64.b64decode(value.removeprefix(PUBLIC_KEY_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("A public key is 'whpk_' followed by base64.") from None
    if len(key) != 32:
        raise ValueError("An ed25519 public key is 32 bytes.")
    return key


def _key(secret: Secret) -> bytes:
    if isinstance(secret, bytes):
        key = secret
    else:
        try:
            key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("A webhook secret is 'whsec_' followed by base64.") from None
    if not key:
        raise ValueError("A webhook secret may not be empty.")
    return key


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value or not str(value).strip():
        raise MalformedWebhook(f"The {name} header is missing.")
    return str(value).strip()


def _any_match(header: str, expected: list[bytes]) -> bool:
    """True if any `v1,<base64>` entry equals any expected digest.

    Every pair is compared with `hmac.compare_digest` and the loop does not stop early, so the
    time taken does not tell an attacker which entry or how much of it matched. Entries of other
    versions (e.g. `v1a` asymmetric signatures) are ignored, as the specification asks.
    """
    matched = False
    for given in _entries(header, "v1"):
        for digest in expected:
            matched |= hmac.compare_digest(given, digest)
    return matched


def _entries(header: str, wanted: str) -> Iterable[bytes]:
    """The decoded signatures of the `wanted` version in a `webhook-signature` value; entries
    that are not base64 are skipped (they match nothing)."""
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != wanted:
            continue
        try:
            yield base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue


def _any_ed25519_match(header: str, public_keys: list[bytes], signed: bytes) -> bool:
    """True if any `v1a,<base64>` entry is a valid ed25519 signature (RFC 8032) of `signed`
    under any of `public_keys`. Every pair is tried, whatever matched before."""
    if not public_keys:
        return False
    try:
        from cryptography.exceptions import InvalidSignature as BadSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:  # pragma: no cover - depends on the receiver's environment
        raise ImportError("Verifying v1a signatures needs the 'cryptography' package.") from None
    keys = [Ed25519PublicKey.from_public_bytes(raw) for raw in public_keys]
    matched = False
    for given in _entries(header, "v1a"):
        for key in keys:
            try:
                key.verify(given, signed)
                matched = True
            except BadSignature:
                pass
    return matched
