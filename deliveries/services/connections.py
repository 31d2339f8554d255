"""Sharing a few database connections among many deliveries in flight.

A worker that keeps hundreds of HTTP requests in flight (threads or gevent) would otherwise hold
one PostgreSQL connection per thread or greenlet, mostly idle while it waits on a receiver. With
a connection pool configured (`DATABASES[...]["OPTIONS"]["pool"]`, see DATABASE_POOL_MAX_SIZE in
the reference settings), a delivery gives its connection back to the pool before it waits on the
network and after it finished, so the number of connections is the pool's size, not the
concurrency. Without a pool this does nothing: closing would cost a new connection per delivery.

Each delivery takes a connection from the pool twice. Checking it with a round trip each time
(`CONN_HEALTH_CHECKS` with a pool) cost more CPU than the statements that follow, so the
reference settings leave that check off and the first statement after each checkout goes through
`reconnecting()` instead: a connection the server dropped (a restart, a killed backend) is
discarded and the statement runs once more on a fresh one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import InterfaceError, OperationalError, connections, router

P = ParamSpec("P")
R = TypeVar("R")


def working_alias() -> str:
    """The database alias the pipeline reads and writes its working rows on: where the host's
    routers write deliveries (`router.db_for_write(Delivery)`).

    Reads of the rows an attempt works on go there too, never to a read replica: a replica that
    lags would hide a subscription created a moment ago or a delivery just fanned out
    (Saleor's `allow_writer()` does the same for its own working rows). Events, deliveries and
    subscriptions must live on that one alias: `deliveries.checks` refuses a router that splits
    them (the claim joins them in one statement).
    """
    from ..models import Delivery

    return router.db_for_write(Delivery)


def release_pooled_connection(alias: str | None = None) -> None:
    """Hand this thread's connection on `alias` (default: `working_alias()`) back to the pool,
    unless a transaction is open."""
    connection = connections[alias or working_alias()]
    if connection.connection is None or connection.in_atomic_block:
        return
    if not (connection.settings_dict.get("OPTIONS") or {}).get("pool"):
        return
    connection.close()


def reconnecting(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`fn(*args, **kwargs)`, run once more on a new connection if the one it used was dead.

    Only outside a transaction (inside one, the work before the failure is lost with the
    connection), and only when the connection is unusable afterwards: an error the server
    answered on a live connection is raised as it is. A statement whose connection died after
    the server committed it fails its guard when run again (an attempt row's unique number, a
    delivery no longer in the expected state), so nothing is done twice.
    """
    try:
        return fn(*args, **kwargs)
    except (OperationalError, InterfaceError):
        connection = connections[working_alias()]
        if connection.in_atomic_block or connection.connection is None:
            raise
        if connection.is_usable():
            raise
        connection.close()  # a pool discards a broken connection instead of keeping it
    return fn(*args, **kwargs)
