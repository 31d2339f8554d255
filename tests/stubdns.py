"""DNS answers for tests: names resolve from a table, so no query leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from webhooks_core import netguard


@contextmanager
def resolving(table: dict[str, list[str]]) -> Iterator[None]:
    def resolver(host: str, port: int) -> list[str]:
        try:
            return table[host]
        except KeyError:
            raise OSError(f"stub resolver: unknown host {host}") from None

    netguard.set_resolver(resolver)
    try:
        yield
    finally:
        netguard.set_resolver(None)
