"""Write-only values at rest: Fernet tokens under rotatable keys (`WEBHOOKS["ENCRYPTION_KEYS"]`).

Signing secrets, v1a private keys, custom header values, OAuth2 client secrets and mTLS keys are
stored as Fernet tokens (AES-128-CBC with HMAC-SHA256, `cryptography`'s `MultiFernet`): the
first key encrypts, every key decrypts, so keys rotate without a flag day (add a new key first,
run `manage.py webhooks_rotate_encryption_key`, then drop the old one). With no key configured,
one is derived from `SECRET_KEY` (HKDF-SHA256) so that a project runs out of the box;
`manage.py check --deploy` reports that (`webhooks.E010`), because the database and the
settings file then share one secret.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .conf import webhook_settings

# HKDF `info` of the key derived from SECRET_KEY: a purpose label, so that the derived key is
# no other use's key (RFC 5869 §3.2).
DERIVATION_INFO = b"django-webhooks encryption key v1"


class UndecryptableValue(ImproperlyConfigured):
    """A stored value no configured key decrypts: the key that encrypted it was removed from
    `WEBHOOKS["ENCRYPTION_KEYS"]` (or `SECRET_KEY` changed while no key was configured)."""


def configured_keys() -> list[str]:
    """The keys of `WEBHOOKS["ENCRYPTION_KEYS"]` (a list, or one comma-separated string),
    empty when none is set."""
    value = webhook_settings.ENCRYPTION_KEYS
    if isinstance(value, str):
        value = value.split(",")
    return [str(key).strip() for key in value or () if str(key).strip()]


@functools.lru_cache(maxsize=4)
def derived_key(secret_key: str) -> str:
    """A Fernet key derived from `secret_key` (HKDF-SHA256, 32 bytes, urlsafe base64)."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=DERIVATION_INFO).derive(
        secret_key.encode("utf-8")
    )
    return base64.urlsafe_b64encode(raw).decode("ascii")


@functools.lru_cache(maxsize=8)
def _keyring(keys: tuple[str, ...]) -> MultiFernet:
    fernets = []
    for index, key in enumerate(keys):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                f'WEBHOOKS["ENCRYPTION_KEYS"][{index}] is not a Fernet key (32 bytes, urlsafe '
                "base64): make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`."
            ) from exc
    return MultiFernet(fernets)


def keyring() -> MultiFernet:
    """The configured keys (or the one derived from SECRET_KEY), the first one encrypting.

    Raises ImproperlyConfigured naming the key that is malformed.
    """
    keys = configured_keys() or [derived_key(str(settings.SECRET_KEY))]
    return _keyring(tuple(keys))


def encrypt(value: str) -> str:
    """`value` as a Fernet token (ASCII) under the first key."""
    return keyring().encrypt(value.encode("utf-8")).decode("ascii")


# Tokens already opened in this process, by keyring and token: every delivery loads its
# subscription's secrets again, and a Fernet decryption (HMAC check and AES) costs more than the
# rest of reading the row. A token never changes meaning (Fernet tokens here have no TTL), and
# the keyring is part of the key, so removing a key makes its tokens undecryptable at once, as
# without the cache. Holds clear text no longer than the process, which already holds it
# while delivering; bounded, emptied when full.
DECRYPTED_MAX = 4096
_decrypted: dict[tuple[MultiFernet, str], str] = {}


def decrypt(token: str) -> str:
    """The text inside `token`. Raises UndecryptableValue when no configured key opens it."""
    ring = keyring()
    found = _decrypted.get((ring, token))
    if found is not None:
        return found
    try:
        text = ring.decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise UndecryptableValue(
            'A stored value cannot be decrypted with any key of WEBHOOKS["ENCRYPTION_KEYS"]: '
            "put back the key it was encrypted with (any position but the first decrypts)."
        ) from exc
    if len(_decrypted) >= DECRYPTED_MAX:
        _decrypted.clear()
    _decrypted[(ring, token)] = text
    return text
