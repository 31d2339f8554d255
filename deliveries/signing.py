"""Standard Webhooks signatures.

`webhook-signature` holds one space-separated entry per active key, each over the same content
`{id}.{timestamp}.{body}`: `v1,<base64>` for a `whsec_` secret (HMAC-SHA256 keyed with the
decoded secret) and `v1a,<base64>` for a `whsk_` private key (its ed25519 signature, RFC 8032),
which receivers check with the matching `whpk_` public key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

from subscriptions.secrets import SIGNING_KEY_PREFIX, private_key, secret_key


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature entry: `v1a,...` for a `whsk_` key, `v1,...` for a `whsec_` secret.
    Raises ValueError for a malformed key."""
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    if secret.startswith(SIGNING_KEY_PREFIX):
        return "v1a," + base64.b64encode(private_key(secret).sign(signed)).decode("ascii")
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one entry per key of `secrets` (`whsec_` or `whsk_`)."""
    return " ".join(signature(secret, msg_id, timestamp, body) for secret in secrets)
