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
