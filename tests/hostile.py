"""A hostile HTTP receiver for tests: a raw socket server on 127.0.0.1 that answers with any
bytes at any pace.

`tests/receiver.py` is a well-behaved server (http.server); this one writes exactly the bytes a
script gives it, so a test can send what no HTTP library would: NUL bytes, invalid UTF-8,
oversized or endless header lines, a reset after the headers, an answer trickled one byte a
second, interim 1xx answers. Each path has its own script; every request is recorded (path,
headers, body) before its script runs, so a test can count the POSTs the receiver really got.

    server = HostileServer().start()
    server.script("/nul", Send(b"HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\n\\r\\nok\\x00ok"))
    server.url("/nul")      # http://127.0.0.1:PORT/nul
    server.counts["/nul"]   # POSTs received on that path

A connection stays open for further requests after its script (keep-alive) unless the script
ends it with `Close()` or `Reset()`. With `ssl_context` the server speaks TLS and records the
SNI name each client sent (`server_names`). `on_connect` steps run right after accept, before
any request is read (e.g. a TLS handshake trickled byte by byte on a plain socket).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Send:
    """Write these bytes at once."""

    data: bytes


@dataclass(frozen=True)
class Trickle:
    """Write these bytes one at a time, `interval` seconds apart."""

    data: bytes
    interval: float = 1.0


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Close:
    """Close the connection (FIN)."""


@dataclass(frozen=True)
class Reset:
    """Abort the connection with a TCP RST (SO_LINGER 0)."""


Step = Send | Trickle | Pause | Close | Reset

OK = Send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


@dataclass
class Request:
    path: str
    head: bytes
    body: bytes
    at: float

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode()
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == wanted:
                return value.strip().decode("latin-1")
        return None


class _Stop(Exception):
    pass


class HostileServer:
    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        on_connect: Sequence[Step] = (),
    ) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.ssl_context = ssl_context
        self.on_connect = tuple(on_connect)
        self._scripts: dict[str, tuple[Step, ...]] = {}
        self._cond = threading.Condition()
        self._stopped = threading.Event()
        self.requests: list[Request] = []
        self.counts: dict[str, int] = defaultdict(int)
        self.connections = 0
        self.server_names: list[str | None] = []
        # The subject of each client certificate presented (mutual TLS), one per connection.
        self.client_subjects: list[str | None] = []
        if ssl_context is not None:
            ssl_context.sni_callback = self._sni

    def start(self) -> HostileServer:
        threading.Thread(target=self._accept, name="hostile-accept", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self.sock.close()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def url(self, path: str = "/hook", *, host: str = "127.0.0.1", scheme: str = "") -> str:
        scheme = scheme or ("https" if self.ssl_context else "http")
        return f"{scheme}://{host}:{self.port}{path}"

    def script(self, path: str, *steps: Step) -> None:
        with self._cond:
            self._scripts[path] = tuple(steps)

    def requests_to(self, path: str) -> list[Request]:
        with self._cond:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, count: int, path: str, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.counts[path] < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    # --- serving --------------------------------------------------------------------------

    def _sni(self, sslsock: ssl.SSLSocket, name: str | None, context: ssl.SSLContext) -> None:
        with self._cond:
            self.server_names.append(name)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._cond:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._run(conn, self.on_connect)
            if self.ssl_context is not None:
                conn.settimeout(10)
                conn = self.ssl_context.wrap_socket(conn, server_side=True)
                conn.settimeout(None)
                peer = conn.getpeercert()
                subject = dict(item[0] for item in peer["subject"]) if peer else {}
                with self._cond:
                    self.client_subjects.append(subject.get("commonName"))
            buffer = b""
            while not self._stopped.is_set():
                request, buffer = self._read_request(conn, buffer)
                if request is None:
                    return
                with self._cond:
                    self.requests.append(request)
                    self.counts[request.path] += 1
                    steps = self._scripts.get(request.path.partition("?")[0], (OK,))
                    self._cond.notify_all()
                self._run(conn, steps)
        except (_Stop, OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _run(self, conn: socket.socket, steps: Sequence[Step]) -> None:
        for step in steps:
            if self._stopped.is_set():
                raise _Stop
            if isinstance(step, Send):
                conn.sendall(step.data)
            elif isinstance(step, Trickle):
                for byte in step.data:
                    if self._stopped.is_set():
                        raise _Stop
                    conn.sendall(bytes([byte]))
                    time.sleep(step.interval)
            elif isinstance(step, Pause):
                time.sleep(step.seconds)
            elif isinstance(step, Close):
                raise _Stop
            elif isinstance(step, Reset):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                raise _Stop

    @staticmethod
    def _read_request(conn: socket.socket, buffer: bytes) -> tuple[Request | None, bytes]:
        while b"\r\n\r\n" not in buffer:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        request_line = head.split(b"\r\n", 1)[0].split()
        path = request_line[1].decode("latin-1") if len(request_line) > 1 else ""
        request = Request(path=path.partition("?")[0], head=head, body=b"", at=time.monotonic())
        length = int(request.header("content-length") or 0)
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            rest += chunk
        request.body, rest = rest[:length], rest[length:]
        return request, rest
