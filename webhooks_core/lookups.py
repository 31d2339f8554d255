"""DNS lookups that give up at a deadline.

`socket.getaddrinfo()` takes no timeout and cannot be interrupted: a slow or broken resolver
holds the calling thread for as long as it likes (glibc: attempts times timeout per name server). A
webhook attempt has a total deadline (`TIMEOUT`), so its lookup runs on one of a few helper
threads and the attempt stops waiting when its deadline comes; the lookup finishes (or fails)
on its own later and its answer is dropped.

The helper threads are daemon threads, started on demand up to `MAX_THREADS` per process (a
forked child starts its own). While every thread is stuck in a lookup, further lookups wait in
the queue and time out at their own deadline: a broken resolver costs a bounded number of
threads, never the worker's.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

MAX_THREADS = 16


class LookupTimeout(TimeoutError):
    """The lookup did not finish within the time given."""


class _Job:
    __slots__ = ("args", "done", "error", "fn", "result")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class _Threads:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._pid = 0
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._threads = 0
        self._idle = 0  # started threads not running a job and not promised to one

    def run(self, fn: Callable[..., T], args: tuple[Any, ...], timeout: float) -> T:
        job = _Job(fn, args)
        with self._lock:
            if self._pid != os.getpid():  # first use in this (possibly forked) process
                self._pid = os.getpid()
                self._jobs = queue.SimpleQueue()
                self._threads = self._idle = 0
            if self._idle:
                self._idle -= 1
            elif self._threads < self._limit:
                self._threads += 1
                threading.Thread(
                    target=self._work, args=(self._jobs,), name="webhooks-lookup", daemon=True
                ).start()
            self._jobs.put(job)
        if not job.done.wait(max(timeout, 0.0)):
            raise LookupTimeout(f"no answer within {timeout:.3g} s")
        if job.error is not None:
            raise job.error
        return job.result

    def _work(self, jobs: queue.SimpleQueue[_Job]) -> None:
        while True:
            job = jobs.get()
            try:
                job.result = job.fn(*job.args)
            except BaseException as exc:  # handed to the caller, who decides
                job.error = exc
            job.done.set()
            with self._lock:
                self._idle += 1


_threads = _Threads(MAX_THREADS)


def call_with_timeout(fn: Callable[..., T], *args: Any, timeout: float) -> T:
    """`fn(*args)` run on a lookup thread; its result, or its exception re-raised here.

    Raises LookupTimeout if it has not returned within `timeout` seconds (it keeps running,
    and its result is dropped).
    """
    return _threads.run(fn, args, timeout)
