"""Signing secrets in the Standard Webhooks form: `whsec_` + base64 of 24 to 64 random bytes."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets

PREFIX = "whsec_"
MIN_BYTES = 24
MAX_BYTES = 64
DEFAULT_BYTES = 32


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
