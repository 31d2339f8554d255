"""One line a person can read for each failed attempt, by its ErrorKind.

The stored `error` is the raw detail (an exception's type and message, such as
``ConnectionError: TrackedHTTPPool(host='127.0.0.1', port=9000): ... [Errno 111]``): useful to
whoever debugs, unreadable in a list and too wide for its column. Lists (portal, admin, notices)
show `summarize(...)` instead; the raw detail appears only on the page of the delivery and its
attempts.

The kind decides the sentence. Within CONNECTION and PROTOCOL the detail only picks a more
precise wording among a few (refused, closed, name not found, TLS); nothing else depends on it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils.translation import gettext as _

from .conf import webhook_settings
from .models import DeliveryAttempt, ErrorKind

# Words of the raw detail (exception names and OS messages) and the sentence each selects.
# Checked in order: the first that appears wins.
_CONNECTION_DETAILS = (
    (("ConnectionRefusedError", "Connection refused", "Errno 111", "Errno 61"), "refused"),
    (
        (
            "NameResolutionError",
            "Name or service not known",
            "nodename nor servname",
            "getaddrinfo failed",
            "No address associated",
            "Temporary failure in name resolution",
        ),
        "unknown_host",
    ),
    (
        (
            "CERTIFICATE_VERIFY_FAILED",
            "certificate verify failed",
            "Hostname mismatch",
            "doesn't match",
            "SSLCertVerificationError",
        ),
        "certificate",
    ),
    (("SSLError", "SSL:", "TLS"), "tls"),
    (
        (
            "RemoteDisconnected",
            "IncompleteRead",
            "Connection reset",
            "Errno 104",
            "Broken pipe",
            "ConnectionResetError",
        ),
        "closed",
    ),
    (("Network is unreachable", "No route to host", "Errno 101", "Errno 113"), "unreachable"),
)


def _where(url: str) -> tuple[str, str]:
    """(host, host:port) of `url`, the scheme's default port written out."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        return url, url
    host = parts.hostname or url
    shown = f"[{host}]" if ":" in host else host
    return host, f"{shown}:{port}" if port else shown


def _connection_detail(error: str) -> str:
    for words, detail in _CONNECTION_DETAILS:
        if any(word in error for word in words):
            return detail
    return ""


def summarize(error_kind: str, status: int | None, error: str = "", url: str = "") -> str:
    """A one-line summary of a failed attempt: "Receiver answered 503", "Connection refused
    by 127.0.0.1:9000", "No response within 15 s", "TLS certificate not valid for
    hooks.example.com". "" for an attempt that succeeded (2xx and no error kind).

    `error_kind` is an ErrorKind value, `status` the HTTP status if any, `error` the stored
    raw detail, `url` the endpoint's URL (for the host named in the sentence).
    """
    host, host_port = _where(url) if url else ("", "")
    if error_kind in (ErrorKind.NONE, ErrorKind.HTTP_STATUS) and status is not None:
        if 200 <= status < 300 and error_kind == ErrorKind.NONE:
            return ""
        return _("Receiver answered %(status)d") % {"status": status}
    if error_kind == ErrorKind.TIMEOUT:
        seconds = float(webhook_settings.TIMEOUT)
        return _("No response within %(seconds)s s") % {"seconds": f"{seconds:g}"}
    if error_kind == ErrorKind.CONNECTION:
        detail = _connection_detail(error)
        target = host_port or _("the receiver")
        if detail == "refused":
            return _("Connection refused by %(target)s") % {"target": target}
        if detail == "unknown_host":
            return _("Host name %(host)s not found") % {"host": host or target}
        if detail == "certificate":
            return _("TLS certificate not valid for %(host)s") % {"host": host or target}
        if detail == "tls":
            return _("TLS handshake with %(target)s failed") % {"target": target}
        if detail == "closed":
            return _("Connection closed by %(target)s before a full answer") % {"target": target}
        if detail == "unreachable":
            return _("Network cannot reach %(target)s") % {"target": target}
        return _("Could not connect to %(target)s") % {"target": target}
    if error_kind == ErrorKind.PROTOCOL:
        if status is not None:
            return _("Receiver answered %(status)d with an unreadable response") % {
                "status": status
            }
        return _("Receiver's answer is not valid HTTP")
    if error_kind == ErrorKind.BLOCKED:
        return _("Destination refused: %(host)s is a private or reserved address") % {
            "host": host or _("the host")
        }
    if error_kind == ErrorKind.INVALID_URL:
        return _("The endpoint URL is not valid")
    if error_kind == ErrorKind.INTERRUPTED:
        return _("Worker stopped during the attempt; it is retried")
    if error_kind == ErrorKind.INTERNAL:
        return _("Internal error while sending; it is retried")
    return _("Failed") if error else ""


def attempt_summary(attempt: Any, url: str = "") -> str:
    """`summarize` for a DeliveryAttempt; `url` defaults to its subscription's (one query if
    not loaded)."""
    if not url and attempt.error_kind not in (ErrorKind.NONE, ErrorKind.HTTP_STATUS):
        url = attempt.delivery.subscription.url
    return summarize(attempt.error_kind, attempt.response_status, attempt.error, url)


def delivery_summary(delivery: Any) -> str:
    """The summary of a delivery's last answer, for lists. Reads `last_error_kind` when the
    queryset annotated it (`with_last_error_kind`), else the delivery's own columns; a
    delivery that ended without an attempt (skipped, discarded) shows its reason, which is
    ours and already one line."""
    kind = getattr(delivery, "last_error_kind", None)
    status = delivery.last_status_code
    if kind is None:
        kind = ErrorKind.HTTP_STATUS if status is not None else ""
    if kind == "" and status is None:
        return delivery.last_error
    return summarize(kind, status, delivery.last_error, delivery.subscription.url)


def last_answer(delivery: Any) -> str:
    """A delivery's last answer in one line for lists: "HTTP 200" for a success, else the
    summary of its error by kind ("Connection refused by 127.0.0.1:9000"); "" before any.
    The raw error is for the delivery's own page only."""
    status = delivery.last_status_code
    if status is not None and 200 <= status < 300:
        return f"HTTP {status}"
    return delivery_summary(delivery)


def with_last_error_kind(queryset: QuerySet) -> QuerySet:
    """`queryset` of deliveries annotated with `last_error_kind`, the error kind of each
    one's latest attempt: one subquery on the (delivery, number) index, so a list page stays
    one query however many rows it shows."""
    latest = DeliveryAttempt.objects.filter(delivery=OuterRef("pk")).order_by("-number")
    return queryset.annotate(last_error_kind=Subquery(latest.values("error_kind")[:1]))
