"""Standard Webhooks signatures.

`webhook-signature` holds one space-separated `v1,<base64>` entry per active secret, each the
HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the decoded secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

from subscriptions.secrets import secret_key


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(signature(secret, msg_id, timestamp, body) for secret in secrets)
