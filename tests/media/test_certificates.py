"""Generated and loaded DTLS certificates, and their SDP fingerprints."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from rtcgw.config import DtlsKeyType
from rtcgw.media.certificates import (
    DtlsCertificate,
    DtlsPrivateKey,
    generate_certificate,
    load_certificate,
)
from rtcgw.media.errors import LocalMediaError, MediaConfigError

FINGERPRINT = re.compile(r"[0-9A-F]{2}(:[0-9A-F]{2})*")


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(
    key: DtlsPrivateKey | ed25519.Ed25519PrivateKey, password: bytes | None = None
) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _issue(
    subject: str, key: DtlsPrivateKey, issuer: str, issuer_key: DtlsPrivateKey
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(issuer_key, hashes.SHA256())
    )


@pytest.mark.parametrize(
    ("key_type", "key_class"),
    [(DtlsKeyType.EC_P256, ec.EllipticCurvePrivateKey), (DtlsKeyType.RSA_2048, rsa.RSAPrivateKey)],
)
def test_generated_certificate_is_minimal_and_self_signed(
    key_type: DtlsKeyType, key_class: type
) -> None:
    generated = generate_certificate(key_type, common_name="gw-test")
    cert = generated.certificate
    assert isinstance(generated.key, key_class)
    assert generated.chain == ()
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gw-test"
    assert len(cert.extensions) == 0
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    cert.verify_directly_issued_by(cert)
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    assert cert.not_valid_after_utc - now > datetime.timedelta(days=29)
    assert cert.serial_number > 0
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
    assert public.public_numbers() == generated.key.public_key().public_numbers()


def test_ec_certificate_is_small() -> None:
    # Small certificates keep the server's flight well inside one 1200-byte datagram.
    der = generate_certificate(DtlsKeyType.EC_P256).certificate.public_bytes(
        serialization.Encoding.DER
    )
    assert len(der) < 400


def test_serials_are_random() -> None:
    serials = {
        generate_certificate(DtlsKeyType.EC_P256).certificate.serial_number for _ in range(5)
    }
    assert len(serials) == 5


@pytest.mark.parametrize(
    ("algorithm", "hash_algorithm"),
    [("sha-256", hashes.SHA256()), ("sha-384", hashes.SHA384()), ("sha-512", hashes.SHA512())],
)
def test_fingerprint_format(algorithm: str, hash_algorithm: hashes.HashAlgorithm) -> None:
    generated = generate_certificate(DtlsKeyType.EC_P256)
    value = generated.fingerprint(algorithm)
    assert FINGERPRINT.fullmatch(value)
    assert len(value.split(":")) == hash_algorithm.digest_size
    assert bytes.fromhex(value.replace(":", "")) == generated.certificate.fingerprint(
        hash_algorithm
    )


def test_fingerprint_default_is_sha256() -> None:
    generated = generate_certificate(DtlsKeyType.EC_P256)
    assert generated.fingerprint() == generated.fingerprint("sha-256")


@pytest.mark.parametrize("algorithm", ["sha-1", "md5", "SHA256", ""])
def test_fingerprint_refuses_other_algorithms(algorithm: str) -> None:
    with pytest.raises(LocalMediaError, match="fingerprint algorithm"):
        generate_certificate(DtlsKeyType.EC_P256).fingerprint(algorithm)


def test_certificate_is_frozen() -> None:
    generated = generate_certificate(DtlsKeyType.EC_P256)
    with pytest.raises(AttributeError):
        generated.chain = ()  # type: ignore[misc]


# -- load_certificate -----------------------------------------------------------------------


@pytest.fixture
def chain_files(tmp_path: Path) -> tuple[Path, Path, DtlsCertificate]:
    """A leaf signed by an intermediate signed by a root: PEM chain file and key file."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    intermediate = _issue("intermediate", intermediate_key, "root", root_key)
    leaf = _issue("leaf", leaf_key, "intermediate", intermediate_key)
    cert_path = tmp_path / "dtls.crt"
    key_path = tmp_path / "dtls.key"
    cert_path.write_bytes(_pem(leaf) + _pem(intermediate))
    key_path.write_bytes(_key_pem(leaf_key))
    return cert_path, key_path, DtlsCertificate(leaf, leaf_key, (intermediate,))


def test_load_chain(chain_files: tuple[Path, Path, DtlsCertificate]) -> None:
    cert_path, key_path, expected = chain_files
    loaded = load_certificate(cert_path, key_path)
    assert loaded.certificate == expected.certificate
    assert loaded.chain == expected.chain
    assert loaded.fingerprint() == expected.fingerprint()


def test_load_single_rsa_certificate(tmp_path: Path) -> None:
    generated = generate_certificate(DtlsKeyType.RSA_2048)
    (tmp_path / "c.pem").write_bytes(_pem(generated.certificate))
    (tmp_path / "k.pem").write_bytes(_key_pem(generated.key))
    loaded = load_certificate(tmp_path / "c.pem", tmp_path / "k.pem")
    assert loaded.certificate == generated.certificate
    assert loaded.chain == ()
    assert isinstance(loaded.key, rsa.RSAPrivateKey)


def test_load_missing_file_names_it(chain_files: tuple[Path, Path, DtlsCertificate]) -> None:
    cert_path, key_path, _ = chain_files
    missing = cert_path.with_name("nope.crt")
    with pytest.raises(MediaConfigError, match=r"nope\.crt: cannot read the DTLS certificate"):
        load_certificate(missing, key_path)
    with pytest.raises(MediaConfigError, match=r"nope\.key: cannot read the DTLS private key"):
        load_certificate(cert_path, cert_path.with_name("nope.key"))


def test_load_not_pem(chain_files: tuple[Path, Path, DtlsCertificate]) -> None:
    cert_path, key_path, _ = chain_files
    cert_path.write_bytes(b"hello\n")
    with pytest.raises(MediaConfigError, match=r"dtls\.crt: no PEM certificate"):
        load_certificate(cert_path, key_path)


def test_load_key_not_pem(chain_files: tuple[Path, Path, DtlsCertificate]) -> None:
    cert_path, key_path, _ = chain_files
    key_path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(MediaConfigError, match=r"dtls\.key: not a usable PEM private key"):
        load_certificate(cert_path, key_path)


def test_load_encrypted_key(chain_files: tuple[Path, Path, DtlsCertificate]) -> None:
    cert_path, key_path, expected = chain_files
    key_path.write_bytes(_key_pem(expected.key, password=b"secret"))
    with pytest.raises(MediaConfigError, match=r"dtls\.key: the private key is encrypted"):
        load_certificate(cert_path, key_path)


def test_load_key_that_does_not_match(chain_files: tuple[Path, Path, DtlsCertificate]) -> None:
    cert_path, key_path, _ = chain_files
    key_path.write_bytes(_key_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(MediaConfigError, match=r"dtls\.key: the private key does not match"):
        load_certificate(cert_path, key_path)


def test_load_key_of_an_unsupported_type(chain_files: tuple[Path, Path, DtlsCertificate]) -> None:
    cert_path, key_path, _ = chain_files
    key_path.write_bytes(_key_pem(ed25519.Ed25519PrivateKey.generate()))
    with pytest.raises(MediaConfigError, match="EC or RSA private key, not"):
        load_certificate(cert_path, key_path)
