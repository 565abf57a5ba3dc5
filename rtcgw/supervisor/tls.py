"""TLS for the listeners: server contexts and the ad-hoc self-signed certificate.

``rtcgw run`` without ``--cert``/``--key`` makes a fresh ECDSA P-256 certificate for the
machine's names so that wss works at once on a trial; its path and SHA-256 fingerprint are
logged so that an operator can check what a browser shows.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["SelfSigned", "make_self_signed", "server_context"]


@dataclass(frozen=True, slots=True)
class SelfSigned:
    """Where an ad-hoc certificate and key were written, and the certificate's fingerprint."""

    certificate: Path
    key: Path
    fingerprint_sha256: str


def make_self_signed(folder: Path, *, days: int = 30) -> SelfSigned:
    """Write a self-signed ECDSA P-256 certificate for this host into ``folder``."""
    key = ec.generate_private_key(ec.SECP256R1())
    hostname = socket.gethostname()
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    if hostname and hostname != "localhost":
        names.insert(0, x509.DNSName(hostname))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname or "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "adhoc-cert.pem", folder / "adhoc-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    # The key is written owner-only from the start, never world-readable for a moment.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    fingerprint = cert.fingerprint(hashes.SHA256()).hex(":").upper()
    return SelfSigned(cert_path, key_path, fingerprint)


def server_context(
    certificate: Path, key: Path, *, ca: Path | None = None, require_client: bool = False
) -> ssl.SSLContext:
    """A server-side TLS context for a wss or SIP-over-TLS listener."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    if ca is not None:
        context.load_verify_locations(ca)
        context.verify_mode = ssl.CERT_REQUIRED if require_client else ssl.CERT_OPTIONAL
    return context
