"""A throwaway certificate authority for TLS tests, made with the `openssl` command line.

`make_pki(folder, names)` writes a CA (`ca.pem`, the file to give `WEBHOOKS["CA_BUNDLE"]`) and
a server certificate for DNS `names` signed by it (`server.pem`, `server.key`). Receivers on
127.0.0.1 present it; the sender verifies it as it would any public certificate.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command line tool is needed for the TLS tests")
    subprocess.run([openssl, *args], cwd=cwd, check=True, capture_output=True)


def make_pki(folder: Path, names: list[str]) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=webhooks test CA", "-keyout", "ca.key", "-out", "ca.pem",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={names[0]}",
        "-keyout", "server.key", "-out", "server.csr",
        cwd=folder,
    )  # fmt: skip
    (folder / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join(f'DNS:{name}' for name in names)}\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.pem",
        cwd=folder,
    )  # fmt: skip
    return Pki(ca=folder / "ca.pem", cert=folder / "server.pem", key=folder / "server.key")


@dataclass(frozen=True)
class ClientPem:
    """A client certificate signed by a test CA, and its key, as PEM text (what the API takes)."""

    cert: str
    key: str


def make_client_cert(folder: Path, name: str, *, ca: Pki | None = None) -> ClientPem:
    """A client certificate (extendedKeyUsage clientAuth) for `name`, signed by `ca`'s
    authority (the CA in `folder` that `make_pki` made when None)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_cert = ca.ca if ca is not None else folder / "ca.pem"
    ca_key = ca_cert.with_name("ca.key")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
        "-keyout", f"{name}.key", "-out", f"{name}.csr",
        cwd=folder,
    )  # fmt: skip
    (folder / f"{name}.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=clientAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
        cwd=folder,
    )  # fmt: skip
    return ClientPem(
        cert=(folder / f"{name}.pem").read_text(), key=(folder / f"{name}.key").read_text()
    )


def mtls_server_context(pki: Pki) -> ssl.SSLContext:
    """A server context that requires a client certificate signed by `pki`'s CA."""
    context = pki.server_context()
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(pki.ca)
    return context
