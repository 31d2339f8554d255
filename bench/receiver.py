"""A small HTTP/1.1 receiver for the benchmark: asyncio, keep-alive, no framework.

It answers every POST with 200 (or 500 under /fail/), after `--delay` seconds, and counts what
it got: every request, and distinct (path, webhook-id) pairs, so that the bench can tell a
duplicate from a missing delivery. Control endpoints (GET): /_stats, /_wait?n=N (answers once N
deliveries arrived, for latency runs), /_reset. One event loop in one process handles well over
ten thousand requests a second here, above anything the pipeline sends.

    python bench/receiver.py --port 8001 --delay 0.2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from typing import cast
from urllib.parse import parse_qs, urlsplit


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = 0
        self.seen: set[tuple[str, str]] = set()
        self.duplicates = 0
        self.first = 0.0
        self.last = 0.0
        self.arrivals: dict[str, float] = {}
        self.waiters: list[tuple[int, asyncio.Future]] = []

    def record(self, path: str, webhook_id: str) -> None:
        now = time.time()
        self.total += 1
        key = (path, webhook_id)
        if key in self.seen:
            self.duplicates += 1
        else:
            self.seen.add(key)
        self.first = self.first or now
        self.last = now
        self.arrivals.setdefault(webhook_id, now)
        if self.waiters:
            ready = [w for w in self.waiters if w[0] <= self.total]
            self.waiters = [w for w in self.waiters if w[0] > self.total]
            for _, fut in ready:
                if not fut.done():
                    fut.set_result(None)

    def as_dict(self, arrivals: bool = False) -> dict:
        out = {
            "total": self.total,
            "distinct": len(self.seen),
            "duplicates": self.duplicates,
            "first": self.first,
            "last": self.last,
        }
        if arrivals:
            out["arrivals"] = self.arrivals
        return out


STATS = Stats()
TASKS: set[asyncio.Future] = set()  # control requests in progress (kept referenced)


class Handler(asyncio.Protocol):
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a TCP server's transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            method, target, _ = head[0].split(" ", 2)
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.handle(method, target, headers)

    def handle(self, method: str, target: str, headers: dict[str, str]) -> None:
        url = urlsplit(target)
        if method == "GET" and url.path.startswith("/_"):
            task = asyncio.ensure_future(self.control(url.path, parse_qs(url.query)))
            TASKS.add(task)
            task.add_done_callback(TASKS.discard)
            return
        STATS.record(url.path, headers.get("webhook-id", ""))
        status = b"500 Internal Server Error" if url.path.startswith("/fail/") else b"200 OK"
        reply = b"HTTP/1.1 " + status + b"\r\ncontent-length: 2\r\n\r\nok"
        if self.delay:
            asyncio.get_running_loop().call_later(self.delay, self.write, reply)
        else:
            self.write(reply)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def control(self, path: str, query: dict[str, list[str]]) -> None:
        if path == "/_wait":
            wanted = int(query.get("n", ["1"])[0])
            timeout = float(query.get("timeout", ["30"])[0])
            if STATS.total < wanted:
                fut = asyncio.get_running_loop().create_future()
                STATS.waiters.append((wanted, fut))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(fut, timeout)
        elif path == "/_reset":
            STATS.reset()
        body = json.dumps(STATS.as_dict(arrivals="arrivals" in query)).encode()
        self.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(port: int, delay: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Handler(delay), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.delay))


if __name__ == "__main__":
    main()
