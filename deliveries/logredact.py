"""Keeps subscription URLs' query strings out of the logs that HTTP libraries write.

A subscription URL may carry a token in its query (`https://hooks.example.com/in?token=...`).
urllib3 logs request targets and full URLs: every request at DEBUG, and at WARNING when a
receiver sends headers it cannot parse (`Failed to parse headers (url=...)`), a log line any
receiver can trigger. `RedactQueryStrings` replaces the query of every URL or request target
in those records' arguments with `[redacted]`; `install()` attaches it to urllib3's loggers
(logger filters, the logging module's public API), once, from `DeliveriesConfig.ready()`. It
changes no level or handler of the host's logging configuration.
"""

from __future__ import annotations

import logging
import re

# The loggers of urllib3 2.x that put a URL or request target in a record.
URLLIB3_LOGGERS = (
    "urllib3.connection",
    "urllib3.connectionpool",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
)

# A query string: from "?" to the next whitespace or quote (request targets are logged inside
# quotes, URLs inside parentheses or quotes).
_QUERY = re.compile(r"\?[^\s'\")]+")
REDACTED = "?[redacted]"


def redact_queries(text: str) -> str:
    """`text` with the query string of every URL in it replaced by `?[redacted]`."""
    return _QUERY.sub(REDACTED, text) if "?" in text else text


class RedactQueryStrings(logging.Filter):
    """Rewrites a record's message and string arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_queries(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_queries(arg) if isinstance(arg, str) else _redacted(arg)
                for arg in record.args
            )
        elif isinstance(record.args, dict):
            record.args = {
                key: redact_queries(arg) if isinstance(arg, str) else _redacted(arg)
                for key, arg in record.args.items()
            }
        return True


def _redacted(arg: object) -> object:
    # urllib3 passes some URLs as objects (a Url, an exception naming the URL): compare their
    # text form; keep the object when it holds no query.
    if arg is None or isinstance(arg, int | float):
        return arg
    text = str(arg)
    cleaned = redact_queries(text)
    return arg if cleaned == text else cleaned


_filter = RedactQueryStrings()


def install() -> None:
    """Attach the filter to urllib3's loggers (idempotent)."""
    for name in URLLIB3_LOGGERS:
        logging.getLogger(name).addFilter(_filter)
