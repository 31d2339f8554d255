"""The requests adapter that webhooks are sent through, built on public hooks of requests,
urllib3, http.client and ssl only.

- `PinnedAdapter` connects to the address the SSRF guard checked (the pool's host), while TLS
  sends SNI for, and verifies the certificate against, the URL's host name
  (`build_connection_pool_key_attributes`, `cert_verify`: the subclassing hooks requests
  documents).
- Its pools use connection classes (`ConnectionCls`, `pool_classes_by_scheme`) that hand their
  socket to the attempt's deadline (`deliveries.deadline.track`) from `connect()` and
  `request()`, and whose `response_class` reads past interim 1xx answers.
- TLS runs on one `ssl.SSLContext` per adapter (so per thread), loaded once with the CA bundle;
  its `sslsocket_class` hands the socket to the deadline before the handshake, so a receiver
  trickling its handshake is cut too. A subscription with a client certificate (mTLS) gets a
  context of its own with that certificate loaded (`ClientCertificate`, passed as `cert`).
- Through an egress proxy (`proxies`), the pool's host is still the checked address, so the
  proxy is asked to `CONNECT` to that address (urllib3 tunnels to the pool's host), and TLS
  inside the tunnel is verified against the name as without a proxy. A plain `http://` request
  (allowed in demos only) is forwarded with the checked address in its absolute URL
  (`request_url`), never the name, so the proxy does not resolve it again.
"""

from __future__ import annotations

import http.client
import io
import os
import re
import secrets
import ssl
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from cryptography.hazmat.primitives import serialization
from requests import certs
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util import create_urllib3_context

from webhooks_core.netguard import Destination

from .deadline import track

# Interim answers skipped before giving up on a final one: enough for any real server (one
# `103 Early Hints`, or a `102 Processing` a minute), not an endless stream.
MAX_INTERIM_ANSWERS = 32


# Longest line and most header lines read in one interim answer: http.client's own limits.
_MAX_LINE = 65536
_MAX_HEADERS = 100
_INTERIM = re.compile(rb"HTTP/1\.[01] +1([0-9][0-9])\b")


def _interim(line: bytes) -> bool:
    """An interim answer's status line: 1xx other than `101 Switching Protocols`."""
    found = _INTERIM.match(line)
    return found is not None and found.group(1) != b"01"


class _AfterInterim(io.RawIOBase):
    """The bytes of the final answer: its status line (already read), then the rest of the
    socket's stream."""

    def __init__(self, first: bytes, rest: io.BufferedIOBase) -> None:
        super().__init__()
        self._first = first
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._first:
            n = min(len(buffer), len(self._first))
            buffer[:n] = self._first[:n]
            self._first = self._first[n:]
            return n
        # At most one read of the socket (`readinto1`): `readinto` would wait to fill the whole
        # buffer, past the end of an answer on a kept-alive connection.
        return self._rest.readinto1(buffer)

    def fileno(self) -> int:
        return self._rest.fileno()

    def close(self) -> None:
        self._rest.close()
        super().close()


class _SkipsInterim:
    """The socket as `FinalResponse` is given it: its `makefile()` (the one call
    `HTTPResponse.__init__` makes of it) returns the stream from the final answer on."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> Any:
        stream = self._sock.makefile(mode, *args, **kwargs)
        # The common case costs nothing: what arrived already starts with a final status line.
        ahead = stream.peek(16)
        if len(ahead) >= 12 and not _interim(ahead):
            return stream
        for _ in range(MAX_INTERIM_ANSWERS + 1):
            line = stream.readline(_MAX_LINE + 1)
            if not _interim(line):
                return io.BufferedReader(_AfterInterim(line, stream))
            # An interim answer has no body (RFC 9110 §15.2): its header lines, then a blank line.
            for _header in range(_MAX_HEADERS + 1):
                if stream.readline(_MAX_LINE + 1) in (b"\r\n", b"\n", b""):
                    break
            else:
                raise http.client.HTTPException("an interim answer with too many headers")
        raise http.client.HTTPException(
            f"more than {MAX_INTERIM_ANSWERS} interim answers and no final one"
        )


class FinalResponse(http.client.HTTPResponse):
    """An HTTP response that skips every interim 1xx answer before the final one.

    http.client skips `100 Continue` only and returns, say, a `103 Early Hints` as if it were
    the answer, leaving the real one unread on the connection. RFC 9110 §15.2: a client must
    be able to parse one or more 1xx responses received before the final response, and
    ignore those it does not expect. `101 Switching Protocols` is not skipped (the protocol
    would change; we never ask for it): the sender treats it as an invalid answer.

    Through the documented constructor only: the socket it is given reads past the interim
    answers (`_SkipsInterim`), so http.client parses the final answer as the first one.
    """

    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        # The stubs ask for a socket; http.client only calls its makefile() (documented).
        super().__init__(_SkipsInterim(sock), *args, **kwargs)  # type: ignore[arg-type]


class _Tracking:
    """For urllib3's connection classes: hands the socket to the running attempt's deadline,
    whether new or reused, and reads answers with `FinalResponse`."""

    sock: Any
    response_class: Any = FinalResponse

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        track(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        track(self.sock)  # a reused connection (a new one is tracked by connect())
        super().request(*args, **kwargs)  # type: ignore[misc]


class TrackedHTTPConnection(_Tracking, HTTPConnection):
    pass


class TrackedHTTPSConnection(_Tracking, HTTPSConnection):
    pass


class TrackedHTTPPool(HTTPConnectionPool):
    ConnectionCls = TrackedHTTPConnection


class TrackedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = TrackedHTTPSConnection


class TrackedSSLSocket(ssl.SSLSocket):
    """Hands itself to the deadline before its handshake, which a socket timeout bounds per
    read only."""

    def do_handshake(self, block: bool = False) -> None:
        track(self)
        super().do_handshake(block)


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """urllib3's default client context, trusting `ca_bundle` (a PEM file) or, when None, the
    bundle requests uses (certifi's)."""
    context = create_urllib3_context()
    context.load_verify_locations(cafile=ca_bundle or certs.where())
    context.sslsocket_class = TrackedSSLSocket
    return context


@dataclass(frozen=True)
class ClientCertificate:
    """A client certificate for mutual TLS: PEM certificate (chain) and its unencrypted PEM key,
    as the subscription holds them (decrypted). Never shown in `repr`."""

    cert_pem: str
    key_pem: str

    def __repr__(self) -> str:
        return "ClientCertificate(...)"


def load_client_certificate(context: ssl.SSLContext, client: ClientCertificate) -> None:
    """Load `client` into `context`.

    `ssl` reads certificates and keys from files only, so the key goes to a temporary file
    encrypted under a one-time random password that never leaves this process's memory: what
    touches the disk, for the moment the file exists, is useless on its own. Raises
    ssl.SSLError or ValueError for a certificate or key OpenSSL refuses.
    """
    password = secrets.token_bytes(32)
    key = serialization.load_pem_private_key(client.key_pem.encode("ascii"), password=None)
    sealed = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    with tempfile.TemporaryDirectory(prefix="webhooks-mtls-") as folder:
        cert_path, key_path = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        for path, data in ((cert_path, client.cert_pem.encode("ascii")), (key_path, sealed)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
        context.load_cert_chain(cert_path, key_path, password=password)


# Client contexts kept per adapter: each holds its pools' connections open for reuse.
MAX_CLIENT_CONTEXTS = 256


class PinnedAdapter(HTTPAdapter):
    """Connects to the address the guard checked, while TLS still verifies the host name."""

    def __init__(self, *, ca_bundle: str | None = None, **kwargs: Any) -> None:
        self.ca_bundle = ca_bundle
        self.ssl_context = tls_context(ca_bundle)
        self._client_contexts: OrderedDict[ClientCertificate, ssl.SSLContext] = OrderedDict()
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": TrackedHTTPPool,
            "https": TrackedHTTPSPool,
        }

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # The same tracked connections as without a proxy: the deadline covers the tunnel's
        # TLS handshake, request and answer too.
        manager.pool_classes_by_scheme = {"http": TrackedHTTPPool, "https": TrackedHTTPSPool}
        return manager

    def client_context(self, client: ClientCertificate) -> ssl.SSLContext:
        """The TLS context presenting `client` (built once, then reused with its pools)."""
        context = self._client_contexts.get(client)
        if context is None:
            context = tls_context(self.ca_bundle)
            load_client_certificate(context, client)
            self._client_contexts[client] = context
            while len(self._client_contexts) > MAX_CLIENT_CONTEXTS:
                self._client_contexts.popitem(last=False)
        else:
            self._client_contexts.move_to_end(client)
        return context

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        client = cert if isinstance(cert, ClientCertificate) else None
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, None if client is not None else cert
        )
        destination: Destination | None = getattr(request, "destination", None)
        if destination is not None:
            host_params["host"] = destination.address
            if destination.scheme == "https":
                context = self.client_context(client) if client else self.ssl_context
                pool_kwargs["ssl_context"] = context
                pool_kwargs["server_hostname"] = destination.tls_name
                pool_kwargs["assert_hostname"] = destination.tls_name
        return host_params, pool_kwargs

    def request_url(self, request: requests.PreparedRequest, proxies: Any) -> str:
        url = super().request_url(request, proxies)
        destination: Destination | None = getattr(request, "destination", None)
        if destination is None or not url.lower().startswith("http://"):
            return url  # a path (direct or tunnelled): the connection already goes to the IP
        # Forwarded plain HTTP: the proxy connects where the absolute URL says, so it must say
        # the checked address (the Host header keeps the name).
        address = f"[{destination.address}]" if ":" in destination.address else destination.address
        return urlunsplit(urlsplit(url)._replace(netloc=f"{address}:{destination.port}"))

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # Certificates are always verified, against the CA bundle already in `ssl_context`;
        # requests would have urllib3 load its bundle again for every new connection.
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None


_local = threading.local()


def get_adapter(ca_bundle: str | None = None) -> PinnedAdapter:
    """This process's (this thread's, under a thread pool) adapter and its connection pools:
    connections are reused from one attempt to the next."""
    key = (os.getpid(), ca_bundle)
    adapter = getattr(_local, "adapter", None)
    if adapter is None or getattr(_local, "key", None) != key:
        adapter = PinnedAdapter(
            ca_bundle=ca_bundle, pool_connections=64, pool_maxsize=16, max_retries=0
        )
        _local.adapter = adapter
        _local.key = key
    return adapter
