"""Sharing a few database connections among many deliveries in flight.

A worker that keeps hundreds of HTTP requests in flight (threads or gevent) would otherwise hold
one PostgreSQL connection per thread or greenlet, mostly idle while it waits on a receiver. With
a connection pool configured (`DATABASES[...]["OPTIONS"]["pool"]`, see DATABASE_POOL_MAX_SIZE in
the reference settings), a delivery gives its connection back to the pool before it waits on the
network and after it finished, so the number of connections is the pool's size, not the
concurrency. Without a pool this does nothing: closing would cost a new connection per delivery.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections


def release_pooled_connection(alias: str = DEFAULT_DB_ALIAS) -> None:
    """Hand this thread's connection back to the pool, unless a transaction is open."""
    connection = connections[alias]
    if connection.connection is None or connection.in_atomic_block:
        return
    if not (connection.settings_dict.get("OPTIONS") or {}).get("pool"):
        return
    connection.close()
