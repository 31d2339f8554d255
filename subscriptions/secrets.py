"""Signing keys in the Standard Webhooks forms.

- `v1` (HMAC-SHA256): a shared secret, `whsec_` + base64 of 24 to 64 random bytes.
- `v1a` (ed25519): a private key `whsk_` + base64 of its 32-byte seed, kept by the sender, and
  its public key `whpk_` + base64 of the 32 raw bytes (RFC 8032 §5.1.5), given to receivers.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import secrets

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PREFIX = "whsec_"
MIN_BYTES = 24
MAX_BYTES = 64
DEFAULT_BYTES = 32
SIGNING_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"


def generate_secret(nbytes: int = DEFAULT_BYTES) -> str:
    if not MIN_BYTES <= nbytes <= MAX_BYTES:
        raise ValueError(f"A secret has {MIN_BYTES} to {MAX_BYTES} bytes, not {nbytes}.")
    return PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64-decoded part after `whsec_`."""
    encoded = secret.removeprefix(PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("A secret is 'whsec_' followed by base64.") from exc


def validate_secret(secret: str) -> None:
    """Raise ValueError unless `secret` is a well-formed secret of acceptable strength."""
    if not secret.startswith(PREFIX):
        raise ValueError("A secret starts with 'whsec_'.")
    key = secret_key(secret)
    if not MIN_BYTES <= len(key) <= MAX_BYTES:
        raise ValueError(f"A secret decodes to {MIN_BYTES} to {MAX_BYTES} bytes.")


def secrets_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def generate_signing_key() -> str:
    """A new ed25519 private key for `v1a` signatures, as `whsk_` + base64 of its seed."""
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    return SIGNING_KEY_PREFIX + base64.b64encode(seed).decode("ascii")


@functools.lru_cache(maxsize=1024)
def private_key(signing_key: str) -> Ed25519PrivateKey:
    """The ed25519 key of a `whsk_` string (cached: workers sign with the same few keys).
    Raises ValueError for anything but `whsk_` + base64 of 32 bytes."""
    if not signing_key.startswith(SIGNING_KEY_PREFIX):
        raise ValueError("A signing key starts with 'whsk_'.")
    try:
        seed = base64.b64decode(signing_key.removeprefix(SIGNING_KEY_PREFIX), validate=True)
        return Ed25519PrivateKey.from_private_bytes(seed)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("A signing key is 'whsk_' followed by base64 of 32 bytes.") from exc


def public_key(signing_key: str) -> str:
    """The `whpk_` public key of a `whsk_` private key: what a receiver verifies `v1a` with."""
    raw = private_key(signing_key).public_key().public_bytes_raw()
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode("ascii")
