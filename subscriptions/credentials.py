"""Rules for the credentials a subscription presents to its receiver: an mTLS client
certificate with its key, and OAuth2 client-credentials settings. Pure functions that raise
ValueError with a message fit for the subscriber; the API and the forms turn it into field
errors."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from .headers import origin

# A certificate chain of a few certificates, or one private key, fits in far less.
MAX_PEM_BYTES = 16384
MAX_CLIENT_ID_LENGTH = 255
MAX_CLIENT_SECRET_LENGTH = 1024
MAX_SCOPE_LENGTH = 1000


class CertificateError(ValueError):
    """A client certificate or key refused; `part` is "certificate" or "key"."""

    def __init__(self, message: str, part: str) -> None:
        super().__init__(message)
        self.part = part


def check_client_certificate(cert_pem: str, key_pem: str) -> None:
    """Raise CertificateError unless `cert_pem` holds one or more PEM certificates (the
    client's first) and `key_pem` an unencrypted PEM private key matching the first one."""
    for part, pem in (("certificate", cert_pem), ("key", key_pem)):
        if len(pem.encode("utf-8", "replace")) > MAX_PEM_BYTES:
            raise CertificateError(f"The {part} is longer than {MAX_PEM_BYTES} bytes.", part)
    try:
        chain = x509.load_pem_x509_certificates(cert_pem.encode("ascii"))
    except (ValueError, UnicodeError) as exc:
        raise CertificateError("This is not a PEM certificate.", "certificate") from exc
    try:
        key = serialization.load_pem_private_key(key_pem.encode("ascii"), password=None)
    except TypeError as exc:
        raise CertificateError(
            "The key is protected by a password: give it unencrypted.", "key"
        ) from exc
    except (ValueError, UnicodeError, UnsupportedAlgorithm) as exc:
        raise CertificateError("This is not a PEM private key.", "key") from exc
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if key.public_key().public_bytes(encoding, public) != chain[0].public_key().public_bytes(
        encoding, public
    ):
        raise CertificateError("The key does not belong to the (first) certificate.", "key")


def same_origin(a: str, b: str) -> bool:
    """True if URLs `a` and `b` have the same scheme, host and port (RFC 6454 origin; a
    scheme's default port written out or not is the same port: see `headers.origin`)."""
    return origin(a) == origin(b)
