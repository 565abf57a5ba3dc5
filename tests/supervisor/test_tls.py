"""The ad-hoc certificate: a usable server context and the fingerprint that is logged."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from rtcgw.supervisor.tls import make_self_signed, server_context


def test_self_signed_pair_loads_and_fingerprint_matches(tmp_path: Path) -> None:
    made = make_self_signed(tmp_path / "tls")
    cert = x509.load_pem_x509_certificate(made.certificate.read_bytes())
    assert cert.fingerprint(hashes.SHA256()).hex(":").upper() == made.fingerprint_sha256
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    # The private key is readable by its owner only.
    assert stat.S_IMODE(made.key.stat().st_mode) == 0o600
    context = server_context(made.certificate, made.key)
    assert isinstance(context, ssl.SSLContext)
