"""The certificate a worker presents in DTLS-SRTP, and its SDP fingerprint (RFC 8122).

WebRTC peers authenticate each other by the hash of a certificate that travels in the
signaling (``a=fingerprint``), not by a CA: a minimal self-signed certificate is all the
gateway needs, and a small one keeps every handshake datagram under the path MTU
(ECDSA P-256 by default). Operators who want a CA-issued certificate load one with
``load_certificate``; its chain is sent after it.

What this module does not do: any DTLS (``rtcgw.media.dtls``), any file watching or
renewal. Reading files happens only in ``load_certificate``, at configuration time.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from rtcgw.config import DtlsKeyType
from rtcgw.media.errors import LocalMediaError, MediaConfigError

__all__ = [
    "FINGERPRINT_ALGORITHMS",
    "DtlsCertificate",
    "DtlsPrivateKey",
    "certificate_digest",
    "format_fingerprint",
    "generate_certificate",
    "load_certificate",
]

DtlsPrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

#: The hash functions of ``a=fingerprint`` we compute and verify, weakest first. RFC 8122
#: section 5 lists these from the IANA "Hash Function Textual Names" registry; MD5 and
#: SHA-1 are not accepted (RFC 8827 section 6.5 requires SHA-256 or stronger).
FINGERPRINT_ALGORITHMS: dict[str, hashes.HashAlgorithm] = {
    "sha-256": hashes.SHA256(),
    "sha-384": hashes.SHA384(),
    "sha-512": hashes.SHA512(),
}

#: Validity of a generated certificate: a day in the past absorbs peers with a slow clock;
#: a month is longer than any call, and a worker makes a new one when it starts.
_NOT_BEFORE = datetime.timedelta(days=1)
_NOT_AFTER = datetime.timedelta(days=30)


def certificate_digest(certificate: x509.Certificate, algorithm: str) -> bytes:
    """The raw hash of the DER certificate with ``algorithm`` ("sha-256", ...).

    Raises:
        LocalMediaError: ``algorithm`` is not one of ``FINGERPRINT_ALGORITHMS``.
    """
    hash_algorithm = FINGERPRINT_ALGORITHMS.get(algorithm)
    if hash_algorithm is None:
        raise LocalMediaError(
            f"fingerprint algorithm {algorithm!r} is not one of {sorted(FINGERPRINT_ALGORITHMS)}"
        )
    return certificate.fingerprint(hash_algorithm)


def format_fingerprint(digest: bytes) -> str:
    """Uppercase hex pairs joined by colons, the ``a=fingerprint`` form (RFC 8122 section 5)."""
    return digest.hex(":").upper()


@final
@dataclass(frozen=True, slots=True)
class DtlsCertificate:
    """A certificate, its private key and the intermediates sent after it."""

    certificate: x509.Certificate
    key: DtlsPrivateKey
    #: intermediates, in order, sent after ``certificate`` (never the root)
    chain: tuple[x509.Certificate, ...] = ()

    def fingerprint(self, algorithm: str = "sha-256") -> str:
        """The certificate's fingerprint for SDP, e.g. ``"AB:CD:..."`` (RFC 8122 section 5).

        Raises:
            LocalMediaError: ``algorithm`` is not sha-256, sha-384 or sha-512.
        """
        return format_fingerprint(certificate_digest(self.certificate, algorithm))


def generate_certificate(key_type: DtlsKeyType, *, common_name: str = "rtcgw") -> DtlsCertificate:
    """A fresh key and a minimal self-signed certificate for it (SHA-256 signature).

    The certificate has subject and issuer ``CN=common_name``, a random serial, is valid
    from a day ago to 30 days ahead and carries no extensions: WebRTC peers check only its
    fingerprint (RFC 8827 section 6.5), and every extension would cost handshake bytes.
    """
    key: DtlsPrivateKey
    if key_type is DtlsKeyType.EC_P256:
        key = ec.generate_private_key(ec.SECP256R1())
    elif key_type is DtlsKeyType.RSA_2048:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:  # pragma: no cover - the enum has no other member
        raise LocalMediaError(f"unsupported DTLS key type {key_type!r}")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        # RFC 5280 section 4.1.2.2: positive, at most 20 octets.
        .serial_number(secrets.randbits(63) + 1)
        .not_valid_before(now - _NOT_BEFORE)
        .not_valid_after(now + _NOT_AFTER)
        .sign(key, hashes.SHA256())
    )
    return DtlsCertificate(certificate=certificate, key=key)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MediaConfigError(f"{path}: cannot read the DTLS {what}: {exc.strerror}") from exc


def _public_der(key: object) -> bytes:
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return b""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_certificate(certificate_path: Path, key_path: Path) -> DtlsCertificate:
    """Load a PEM certificate chain (leaf first, then intermediates) and its PEM key.

    Raises:
        MediaConfigError: a file cannot be read or holds no PEM certificate / unencrypted
            PEM key, the key is neither EC nor RSA, or it does not match the leaf
            certificate. The message names the file and the reason.
    """
    pem_chain = _read(certificate_path, "certificate")
    pem_key = _read(key_path, "private key")
    try:
        certificates = x509.load_pem_x509_certificates(pem_chain)
    except ValueError as exc:
        raise MediaConfigError(
            f"{certificate_path}: no PEM certificate could be read ({exc})"
        ) from exc
    try:
        key = serialization.load_pem_private_key(pem_key, password=None)
    except TypeError as exc:
        # cryptography raises TypeError when the key is encrypted and no password is given.
        raise MediaConfigError(
            f"{key_path}: the private key is encrypted; give an unencrypted PEM key ({exc})"
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise MediaConfigError(f"{key_path}: not a usable PEM private key ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise MediaConfigError(
            f"{key_path}: DTLS needs an EC or RSA private key, not {type(key).__name__}"
        )
    leaf, *chain = certificates
    if _public_der(leaf.public_key()) != _public_der(key.public_key()):
        raise MediaConfigError(
            f"{key_path}: the private key does not match the certificate in {certificate_path}"
        )
    return DtlsCertificate(certificate=leaf, key=key, chain=tuple(chain))
