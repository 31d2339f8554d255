"""A real HTTP receiver on 127.0.0.1 for tests and benchmarks.

Each path answers from a script of responses (status, delay, headers, trickle); the last one
repeats. Every request is recorded with its headers and body.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    trickle: float = 0.0  # seconds between body bytes; 0 sends the body at once


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    def __init__(self) -> None:
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.received: list[Received] = []
        self.counts: dict[str, int] = defaultdict(int)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                reply = receiver._record(self.path, dict(self.headers.items()), body)
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(reply.body)))
                    self.end_headers()
                    if reply.trickle:
                        for byte in reply.body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(reply.trickle)
                    else:
                        self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        # Not serve_forever(): it notices shutdown() only at its next poll (every 0.5 s, which
        # summed to about 22 s over the unit run). handle_request() blocks until a connection
        # arrives, and stop() sends one, so the loop ends at once.
        while not self._stopping.is_set():
            self.server.handle_request()

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting and close the listening socket; returns once the accept loop ended."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            socket.create_connection(self.server.server_address[:2], timeout=2).close()
        self.thread.join(5)
        self.server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[path] = list(replies)

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        with self._cond:
            self.received.append(Received(path, headers, body, time.monotonic()))
            self.counts[path] += 1
            script = self._scripts.get(path) or [Reply()]
            reply = script.pop(0) if len(script) > 1 else script[0]
            self._cond.notify_all()
            return reply

    def requests_to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                seen = self.counts[path] if path else len(self.received)
                if seen >= count:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
