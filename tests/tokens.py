"""A real OAuth2 authorization server and a bearer-protected receiver, on 127.0.0.1.

`POST /token` implements the client credentials grant (RFC 6749 §4.4) with client
authentication by HTTP Basic (§2.3.1); every other POST path is a receiver that answers 200
to a live bearer token and 401 to anything else. Tests revoke tokens, script token errors and
read what was asked.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote


@dataclass
class TokenRequest:
    client_id: str
    client_secret: str
    form: dict[str, str]


class TokenServer:
    def __init__(self, client_id: str, client_secret: str, *, expires_in: float = 3600) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.expires_in = expires_in
        self.token_status = 200  # set to another status to make /token fail
        self.token_delay = 0.0
        self.dead_on_arrival = False  # True: tokens are issued but never accepted
        self.token_requests: list[TokenRequest] = []
        self.live: set[str] = set()
        self.deliveries: list[tuple[str, str | None]] = []  # (path, authorization)
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path == "/token":
                    status, answer = server._token(self.headers.get("authorization"), body)
                else:
                    status, answer = server._deliver(self.path, self.headers.get("authorization"))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    def start(self) -> TokenServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def revoke_all(self) -> None:
        with self._lock:
            self.live.clear()

    def _token(self, authorization: str | None, body: bytes) -> tuple[int, dict]:
        if self.token_delay:
            time.sleep(self.token_delay)
        scheme, _, encoded = (authorization or "").partition(" ")
        user, _, password = base64.b64decode(encoded or b"").decode().partition(":")
        form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
        request = TokenRequest(unquote(user), unquote(password), form)
        with self._lock:
            self.token_requests.append(request)
        if self.token_status != 200:
            return self.token_status, {"error": "temporarily_unavailable"}
        if scheme != "Basic" or (request.client_id, request.client_secret) != (
            self.client_id,
            self.client_secret,
        ):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        token = f"token-{next(self._numbers)}"
        with self._lock:
            if not self.dead_on_arrival:
                self.live.add(token)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}

    def _deliver(self, path: str, authorization: str | None) -> tuple[int, dict]:
        with self._lock:
            self.deliveries.append((path, authorization))
            token = (authorization or "").removeprefix("Bearer ")
            ok = (
                authorization is not None
                and authorization.startswith("Bearer ")
                and token in self.live
            )
        return (200, {"ok": True}) if ok else (401, {"error": "invalid_token"})
