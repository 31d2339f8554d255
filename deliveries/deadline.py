"""The total deadline of one HTTP attempt.

requests' timeouts bound each connect and each socket read, not the whole exchange: a receiver
that sends one byte every few seconds (status line, headers, body or TLS handshake) would hold
a worker for as long as it likes. So each attempt runs under a `Deadline`: one watchdog thread
per process shuts down the attempt's socket when its time is up, and the read that was blocked
on it fails at once. The DNS lookup, which no socket timeout covers, is bounded separately
(`webhooks_core.lookups`) with the time left.

The sockets are handed over with `track()` by the connection classes in `deliveries.adapter`,
through public hooks only (a connection's `connect()` and `request()`, the TLS socket's
`do_handshake()`). The deadline keeps the socket object itself, not the connection: when an
answer says `Connection: close`, http.client drops the connection's reference to its socket
while the answer is still being read from it.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator

_local = threading.local()


class Deadline:
    """One attempt's deadline (`at`, monotonic seconds) and the socket it currently uses."""

    __slots__ = ("at", "done", "expired", "lock", "sock")

    def __init__(self, at: float) -> None:
        self.at = at
        self.sock: socket.socket | None = None
        self.done = False
        self.expired = False  # the watchdog cut this attempt: whatever failed, it timed out
        self.lock = threading.Lock()

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def track(self, sock: socket.socket) -> None:
        with self.lock:
            if self.done:
                return
            self.sock = sock
            if self.expired:  # connected after the deadline: cut at once
                _shutdown(sock)

    def cut(self) -> None:
        with self.lock:
            if self.done:
                return
            self.expired = True
            if self.sock is not None:
                _shutdown(self.sock)

    def finish(self) -> None:
        """The attempt is over: the watchdog leaves its socket (maybe pooled again) alone."""
        with self.lock:
            self.done = True
            self.sock = None


def _shutdown(sock: socket.socket) -> None:
    # shutdown(), not close(): another thread is blocked on the socket; shutting it down makes
    # that read return at once, and the owner closes it as usual.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._cond = threading.Condition()
        self._counter = itertools.count()
        self._pid = 0

    def watch(self, deadline: Deadline) -> None:
        with self._cond:
            if self._pid != os.getpid():  # first use in this (possibly forked) process
                self._pid = os.getpid()
                self._heap = []
                threading.Thread(target=self._run, name="webhooks-deadline", daemon=True).start()
            heapq.heappush(self._heap, (deadline.at, next(self._counter), deadline))
            if self._heap[0][2] is deadline:  # only an earlier deadline needs the thread awake
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    _, _, deadline = heapq.heappop(self._heap)
                    deadline.cut()
                self._cond.wait(self._heap[0][0] - now if self._heap else None)


_watchdog = _Watchdog()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Run the block under a total deadline of `seconds`: sockets tracked in this thread
    meanwhile are shut down when it passes."""
    current = Deadline(time.monotonic() + seconds)
    _local.deadline = current
    _watchdog.watch(current)
    try:
        yield current
    finally:
        current.finish()
        _local.deadline = None


def track(sock: socket.socket | None) -> None:
    """Hand `sock` to this thread's running deadline, if any (a no-op outside `deadline()`)."""
    current = getattr(_local, "deadline", None)
    if current is not None and sock is not None:
        current.track(sock)
