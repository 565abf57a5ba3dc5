"""DTLS-SRTP endpoint (RFC 5763, RFC 5764) over pyOpenSSL memory BIOs, sans-IO.

One ``DtlsEndpoint`` per browser-side transport runs the DTLS 1.2 handshake as client or
server (the SDP ``a=setup`` decides, RFC 5763 section 5), checks the peer's certificate
against the ``a=fingerprint`` of its SDP and exports the SRTP keys. ``DtlsContexts`` holds
the pyOpenSSL context a worker builds once and shares between all its endpoints.

Rules:

1. Datagrams in, datagrams out. ``start``, ``receive_untrusted``, ``handle_timeout`` and
   ``close`` return the datagrams to send; ``next_deadline`` says when ``handle_timeout``
   is due. No socket, no clock: ``now`` is an argument.
2. Nothing a peer sends raises. Malformed datagrams are dropped (and counted), a failed
   handshake leaves the endpoint ``FAILED`` with ``failure`` saying why, and the fatal
   alert OpenSSL queued is among the returned datagrams, so the peer learns it too.
3. No datagram we return is larger than ``DtlsSettings.mtu``.

Theory of operation. pyOpenSSL's memory BIOs are byte streams, not datagrams: a read may
return several records, or part of one. So every call drains the outgoing BIO completely,
splits it on DTLS record headers (RFC 6347 section 4.1: 13 bytes, length at offset 11)
and packs whole records greedily into datagrams of at most the MTU, which are exactly the
boundaries OpenSSL planned. OpenSSL fragments handshake messages at that MTU only when
``OP_NO_QUERY_MTU`` is set together with ``set_ciphertext_mtu``: without the option it
asks the memory BIO, gets nothing, and falls back to 256-byte records; with the option
but no MTU the handshake fails. Incoming datagrams are checked for whole records before
they reach OpenSSL, because a partial record left in the BIO would be glued to the next
datagram. After the handshake, datagrams are still fed through ``recv`` so that a peer
that missed our final flight and retransmits its own gets the flight again
(RFC 6347 section 4.2.4), and so that a ``close_notify`` is seen.

There is no HelloVerifyRequest cookie exchange (RFC 6347 section 4.2.1): the relay feeds
DTLS only from an address that passed ICE connectivity checks, which already proved the
peer receives at that address.

OpenSSL runs its retransmission timer (1 s, doubling) on the wall clock, not on ``now``:
``next_deadline`` is ``now`` plus the time OpenSSL reported at the last call, and calling
``handle_timeout`` early is harmless (nothing fires). The handshake as a whole has a
budget measured in ``now`` (``DtlsSettings.handshake_timeout_s``).
"""

from __future__ import annotations

import enum
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, final

from OpenSSL import SSL, crypto

from rtcgw.media.certificates import (
    FINGERPRINT_ALGORITHMS,
    DtlsCertificate,
    certificate_digest,
)
from rtcgw.media.errors import LocalMediaError, MediaConfigError
from rtcgw.media.srtp import DTLS_SRTP_PROFILES, SrtpProfile, SrtpSession

__all__ = [
    "DtlsContexts",
    "DtlsEndpoint",
    "DtlsRole",
    "DtlsSettings",
    "DtlsState",
]

#: DTLS 1.2 on the wire (RFC 6347 section 4.1); pyOpenSSL exports no constant for it.
_DTLS_1_2: Final = 0xFEFD
#: RFC 6347 section 4.1: type(1) version(2) epoch(2) sequence_number(6) length(2).
_RECORD_HEADER_BYTES: Final = 13
_HANDSHAKE_CONTENT_TYPE: Final = 22
#: RFC 7983 section 7: a first byte of 20..63 is DTLS.
_DTLS_FIRST_BYTES: Final = range(20, 64)
#: RFC 5764 section 4.2: the exporter label of DTLS-SRTP keying material.
_EXPORTER_LABEL: Final = b"EXTRACTOR-dtls_srtp"
#: Read size for the memory BIO: larger than any datagram or handshake flight.
_BIO_READ_BYTES: Final = 65536
#: Forward secrecy only: ECDHE with AES-GCM, ChaCha20 or AES-CBC (the last for older SIP
#: endpoints; browsers offer all three). DTLS 1.2 has no TLS 1.3 suites.
_CIPHER_LIST: Final = b"ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES"
#: Strongest first (RFC 8122 section 5: use the strongest hash both sides support).
_FINGERPRINT_PREFERENCE: Final = ("sha-512", "sha-384", "sha-256")
_FINGERPRINT_HEX = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})*")
#: ``flights`` keeps the sizes of this many datagrams, enough for any handshake.
_MAX_RECORDED_DATAGRAMS: Final = 64
_MIN_MTU: Final = 256
_MAX_MTU: Final = 65507

#: Names of the X.509 verification errors a peer certificate most often hits.
_X509_ERRORS: Final = {
    2: "unable to get issuer certificate",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    18: "self-signed certificate",
    19: "self-signed certificate in chain",
    20: "unable to get local issuer certificate",
    21: "unable to verify the first certificate",
}


class DtlsRole(enum.Enum):
    """Which side of the handshake we are (RFC 5763 section 5: ``a=setup``)."""

    CLIENT = "client"  #: we sent ``a=setup:active``: we send the ClientHello
    SERVER = "server"  #: we sent ``a=setup:passive``: we wait for it


class DtlsState(enum.Enum):
    """Where an endpoint is in its life."""

    NEW = "new"  #: created, nothing sent or received
    HANDSHAKING = "handshaking"  #: handshake under way
    CONNECTED = "connected"  #: handshake done, peer verified, SRTP keys available
    FAILED = "failed"  #: handshake or connection failed; ``failure`` says why
    CLOSED = "closed"  #: closed by us or by the peer's close_notify


@final
@dataclass(frozen=True, slots=True)
class DtlsSettings:
    """What a worker's DTLS endpoints share.

    ``require_peer_certificate`` is on for every WebRTC peer (RFC 8827 section 6.5: the
    fingerprint is the peer's identity). Turned off, a peer that presents no certificate
    is accepted, and so is one whose SDP carried no usable fingerprint: its identity is
    then unchecked. That is for lab setups only.
    """

    certificate: DtlsCertificate
    #: largest datagram we send; DTLS fragments handshake messages to fit
    mtu: int = 1200
    #: when set, the peer's chain must also verify against these CAs (PEM file)
    ca_file: Path | None = None
    require_peer_certificate: bool = True
    #: the DTLS-SRTP profiles we offer or accept, most preferred first
    srtp_profiles: tuple[SrtpProfile, ...] = DTLS_SRTP_PROFILES
    #: a handshake not done this long after it started fails with "handshake timeout"
    handshake_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not _MIN_MTU <= self.mtu <= _MAX_MTU:
            raise MediaConfigError(f"DTLS mtu {self.mtu} is outside {_MIN_MTU}..{_MAX_MTU} bytes")
        if not self.srtp_profiles:
            raise MediaConfigError("DTLS srtp_profiles is empty: offer at least one profile")
        for profile in self.srtp_profiles:
            if profile.dtls_name is None:
                raise MediaConfigError(
                    f"SRTP profile {profile.value} cannot be negotiated by DTLS-SRTP"
                )
        if len(set(self.srtp_profiles)) != len(self.srtp_profiles):
            raise MediaConfigError("DTLS srtp_profiles lists a profile twice")
        if not self.handshake_timeout_s > 0:
            raise MediaConfigError(
                f"DTLS handshake_timeout_s must be positive, not {self.handshake_timeout_s}"
            )


class _PeerCheck:
    """The expected fingerprints of one endpoint's peer and what the verification found.

    OpenSSL calls ``verify`` for each certificate of the peer's chain, the leaf (depth 0)
    last, and calls it again for the leaf after we accepted an error: it must give the
    same answer every time.
    """

    __slots__ = ("algorithm", "chain_verified", "expected", "failure", "mismatch", "required")

    def __init__(
        self,
        algorithm: str | None,
        expected: tuple[bytes, ...],
        *,
        chain_verified: bool,
        required: bool,
    ) -> None:
        self.algorithm = algorithm
        self.expected = expected
        self.chain_verified = chain_verified
        self.required = required
        self.failure: str | None = None
        self.mismatch = False

    def matches(self, digest: bytes) -> bool:
        # compare_digest: the comparison must not tell an attacker how many bytes matched.
        return any(hmac.compare_digest(digest, expected) for expected in self.expected)

    def verify(self, certificate: crypto.X509, errno: int, depth: int, ok: bool) -> bool:
        if self.chain_verified and not ok:
            if self.failure is None:
                name = _X509_ERRORS.get(errno, f"X.509 error {errno}")
                self.failure = f"certificate verify failed: {name} at depth {depth}"
            return False
        if depth > 0:
            # Without a CA file the chain is not ours to judge: the fingerprint of the leaf
            # is the peer's identity (RFC 8122 section 5), self-signed or not.
            return True
        if self.algorithm is None:
            if self.required:
                self.failure = "no usable fingerprint"
                return False
            return True
        digest = certificate_digest(certificate.to_cryptography(), self.algorithm)
        if self.matches(digest):
            return True
        self.mismatch = True
        self.failure = "fingerprint mismatch"
        return False


def _verify_callback(
    connection: SSL.Connection, certificate: crypto.X509, errno: int, depth: int, ok: int
) -> bool:
    check = connection.get_app_data()
    if not isinstance(check, _PeerCheck):  # pragma: no cover - every endpoint sets one
        return False
    return check.verify(certificate, errno, depth, bool(ok))


def _select_fingerprints(
    remote_fingerprints: Sequence[tuple[str, str]],
) -> tuple[str | None, tuple[bytes, ...]]:
    """The strongest hash the peer listed that we support, and its digests (RFC 8122 sec. 5).

    Entries with an unknown algorithm or a malformed value are not usable and are skipped;
    several entries of one algorithm (a peer with several certificates) are all accepted.
    """
    usable: dict[str, list[bytes]] = {}
    for algorithm, value in remote_fingerprints:
        name = algorithm.strip().lower()
        hash_algorithm = FINGERPRINT_ALGORITHMS.get(name)
        text = value.strip()
        if hash_algorithm is None or not _FINGERPRINT_HEX.fullmatch(text):
            continue
        digest = bytes.fromhex(text.replace(":", ""))
        if len(digest) == hash_algorithm.digest_size:
            usable.setdefault(name, []).append(digest)
    for name in _FINGERPRINT_PREFERENCE:
        if name in usable:
            return name, tuple(usable[name])
    return None, ()


def _whole_records(datagram: bytes) -> bool:
    """True when ``datagram`` is one or more complete DTLS 1.x records and nothing else."""
    size = len(datagram)
    position = 0
    while position < size:
        if size - position < _RECORD_HEADER_BYTES:
            return False
        if datagram[position] not in _DTLS_FIRST_BYTES or datagram[position + 1] != 0xFE:
            return False
        length = int.from_bytes(datagram[position + 11 : position + 13], "big")
        position += _RECORD_HEADER_BYTES + length
    return size > 0 and position == size


def _pack_records(stream: bytes, mtu: int) -> list[bytes]:
    """Split OpenSSL's output on record boundaries and pack whole records into datagrams.

    A record is never cut: a record larger than ``mtu`` (which OpenSSL does not make once
    the MTU is set) would go alone in its datagram.
    """
    datagrams: list[bytes] = []
    current = bytearray()
    size = len(stream)
    position = 0
    while position < size:
        end = size
        if size - position >= _RECORD_HEADER_BYTES:
            length = int.from_bytes(stream[position + 11 : position + 13], "big")
            end = min(size, position + _RECORD_HEADER_BYTES + length)
        record = stream[position:end]
        position = end
        if current and len(current) + len(record) > mtu:
            datagrams.append(bytes(current))
            current.clear()
        current += record
    if current:
        datagrams.append(bytes(current))
    return datagrams


def _error_reasons(error: SSL.Error) -> list[str]:
    """The reason strings of an OpenSSL error queue, as pyOpenSSL reports them."""
    if not error.args or not isinstance(error.args[0], list):
        return [str(error)] if str(error) else []
    return [str(entry[2]) for entry in error.args[0] if isinstance(entry, tuple) and len(entry) > 2]


def _describe(error: SSL.Error) -> str:
    return "; ".join(_error_reasons(error)) or "no reason given"


@final
class DtlsContexts:
    """The pyOpenSSL context of one worker, built once and shared by all its endpoints.

    pyOpenSSL forbids changing a context once a connection was made from it, so every
    setting is applied here; per-endpoint state (the expected fingerprint, the MTU, the
    role) goes on each connection.
    """

    __slots__ = (
        "_context",
        "fingerprint",
        "fingerprint_algorithm",
        "fingerprint_value",
        "settings",
    )

    def __init__(self, settings: DtlsSettings) -> None:
        """Build the context.

        Raises:
            MediaConfigError: the certificate and key do not match, or ``ca_file`` cannot
                be loaded.
        """
        self.settings = settings
        #: our ``a=fingerprint`` (RFC 8122): sha-256, which every WebRTC stack verifies
        self.fingerprint_algorithm = "sha-256"
        self.fingerprint_value = settings.certificate.fingerprint(self.fingerprint_algorithm)
        self.fingerprint = f"{self.fingerprint_algorithm} {self.fingerprint_value}"

        context = SSL.Context(SSL.DTLS_METHOD)
        # DTLS 1.0 is gone from browsers, and pinning 1.2 keeps the record header we parse
        # (DTLS 1.3 changes it).
        context.set_min_proto_version(_DTLS_1_2)
        context.set_max_proto_version(_DTLS_1_2)
        # OP_NO_QUERY_MTU: honour set_ciphertext_mtu (see the module docstring).
        # OP_NO_TICKET: a session ticket adds ~500 bytes to the last flight and WebRTC never
        # resumes. OP_NO_RENEGOTIATION: nothing in DTLS-SRTP needs it.
        context.set_options(SSL.OP_NO_QUERY_MTU | SSL.OP_NO_TICKET | SSL.OP_NO_RENEGOTIATION)
        context.set_cipher_list(_CIPHER_LIST)
        certificate = settings.certificate
        try:
            context.use_certificate(certificate.certificate)
            for intermediate in certificate.chain:
                context.add_extra_chain_cert(intermediate)
            context.use_privatekey(certificate.key)
            context.check_privatekey()
        except SSL.Error as exc:
            raise MediaConfigError(
                f"DTLS certificate and key cannot be used together: {_describe(exc)}"
            ) from exc
        # RFC 5764 section 4.1.1: the use_srtp extension lists our profiles by preference.
        names = [p.dtls_name for p in settings.srtp_profiles if p.dtls_name is not None]
        context.set_tlsext_use_srtp(b":".join(names))
        if settings.ca_file is not None:
            try:
                context.load_verify_locations(str(settings.ca_file))
            except SSL.Error as exc:
                raise MediaConfigError(
                    f"{settings.ca_file}: cannot load the DTLS CA file: {_describe(exc)}"
                ) from exc
        mode = SSL.VERIFY_PEER
        if settings.require_peer_certificate:
            mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
        context.set_verify(mode, _verify_callback)
        self._context = context

    def _new_connection(self) -> SSL.Connection:
        """A new pyOpenSSL connection over memory BIOs, for ``DtlsEndpoint``."""
        return SSL.Connection(self._context, None)


@final
class DtlsEndpoint:
    """One DTLS-SRTP association: handshake, peer verification, SRTP keys.

    Attributes are read-only for callers. ``flights`` lists the size of each datagram we
    produced, in order (the first 64); ``dropped_datagrams`` counts incoming datagrams
    that were not whole DTLS records.
    """

    __slots__ = (
        "_check",
        "_connection",
        "_keys",
        "_mtu",
        "_timeout_s",
        "_timer_deadline",
        "cipher",
        "completed_at",
        "dropped_datagrams",
        "failure",
        "fingerprint_mismatch",
        "flights",
        "largest_datagram",
        "role",
        "srtp_profile",
        "started_at",
        "state",
    )

    def __init__(
        self,
        contexts: DtlsContexts,
        role: DtlsRole,
        remote_fingerprints: Sequence[tuple[str, str]],
    ) -> None:
        """Prepare an endpoint; nothing is sent until ``start`` or the first datagram.

        Args:
            contexts: the worker's contexts.
            role: client or server, from the negotiated ``a=setup``.
            remote_fingerprints: ``(algorithm, value)`` pairs of the peer's
                ``a=fingerprint`` lines, e.g. ``("sha-256", "AB:CD:...")``.
        """
        settings = contexts.settings
        algorithm, expected = _select_fingerprints(remote_fingerprints)
        self._check = _PeerCheck(
            algorithm,
            expected,
            chain_verified=settings.ca_file is not None,
            required=settings.require_peer_certificate,
        )
        self._mtu = settings.mtu
        self._timeout_s = settings.handshake_timeout_s
        self._timer_deadline: float | None = None
        self._keys: tuple[bytes, bytes] | None = None
        connection = contexts._new_connection()
        connection.set_ciphertext_mtu(settings.mtu)
        connection.set_app_data(self._check)
        if role is DtlsRole.CLIENT:
            connection.set_connect_state()
        else:
            connection.set_accept_state()
        self._connection = connection
        self.role = role
        self.state = DtlsState.NEW
        self.failure: str | None = None
        self.fingerprint_mismatch = False
        self.started_at: float | None = None
        self.completed_at: float | None = None
        self.srtp_profile: SrtpProfile | None = None
        self.cipher: str | None = None
        self.largest_datagram = 0
        self.flights: list[int] = []
        self.dropped_datagrams = 0

    # -- driving -------------------------------------------------------------------------

    def start(self, now: float) -> list[bytes]:
        """Begin the handshake: a client returns its ClientHello, a server waits.

        Raises:
            LocalMediaError: the endpoint is not NEW (started twice, or closed).
        """
        if self.state is not DtlsState.NEW:
            raise LocalMediaError(f"DTLS endpoint cannot start: it is {self.state.value}, not new")
        self.state = DtlsState.HANDSHAKING
        self.started_at = now
        if self.role is DtlsRole.SERVER:
            return []
        self._advance_handshake(now)
        return self._flush(now)

    def receive_untrusted(self, datagram: bytes, now: float) -> list[bytes]:
        """Feed one datagram from the peer; return the datagrams to send back.

        Never raises for anything in ``datagram``: a failure leaves the endpoint FAILED.
        """
        if self.state is DtlsState.FAILED or self.state is DtlsState.CLOSED:
            return []
        if not _whole_records(datagram):
            self.dropped_datagrams += 1
            return []
        if self.state is DtlsState.NEW:
            # A client speaks first; a server starts on the ClientHello's handshake record.
            if self.role is DtlsRole.CLIENT or datagram[0] != _HANDSHAKE_CONTENT_TYPE:
                self.dropped_datagrams += 1
                return []
            self.state = DtlsState.HANDSHAKING
            self.started_at = now
        try:
            self._connection.bio_write(datagram)
        except SSL.Error as exc:  # pragma: no cover - a memory BIO accepts any bytes
            self._fail(f"cannot buffer the datagram: {_describe(exc)}")
            return self._flush(now)
        if self.state is DtlsState.HANDSHAKING:
            self._advance_handshake(now)
        else:
            self._read_records()
        return self._flush(now)

    def next_deadline(self) -> float | None:
        """When ``handle_timeout`` is due (in ``now``'s time base), or None."""
        if self.state is not DtlsState.HANDSHAKING or self.started_at is None:
            return None
        budget = self.started_at + self._timeout_s
        if self._timer_deadline is None:
            return budget
        return min(self._timer_deadline, budget)

    def handle_timeout(self, now: float) -> list[bytes]:
        """Retransmit the last flight if OpenSSL's timer expired; fail past the budget."""
        if self.state is not DtlsState.HANDSHAKING or self.started_at is None:
            return []
        if now >= self.started_at + self._timeout_s:
            self._fail("handshake timeout")
            return []
        try:
            self._connection.DTLSv1_handle_timeout()
        except SSL.Error:
            # OpenSSL gives up after its own retransmission limit.
            self._fail("handshake timeout")
        return self._flush(now)

    def srtp_session(self) -> SrtpSession:
        """SRTP contexts keyed from the handshake: ours to send with, the peer's to receive.

        RFC 5764 section 4.2: the exported material is client key, server key, client
        salt, server salt; each side protects with its own half.

        Raises:
            LocalMediaError: the endpoint is not CONNECTED.
        """
        if self.state is not DtlsState.CONNECTED or self._keys is None or not self.srtp_profile:
            raise LocalMediaError(f"no SRTP keys: DTLS endpoint is {self.state.value}")
        client_key, server_key = self._keys
        if self.role is DtlsRole.CLIENT:
            return SrtpSession(self.srtp_profile, tx_key=client_key, rx_key=server_key)
        return SrtpSession(self.srtp_profile, tx_key=server_key, rx_key=client_key)

    def close(self) -> list[bytes]:
        """Close: a CONNECTED endpoint returns its close_notify alert (RFC 5246 7.2.1)."""
        if self.state is DtlsState.CONNECTED:
            self.state = DtlsState.CLOSED
            self._shutdown()
            return self._drain()
        if self.state is DtlsState.NEW or self.state is DtlsState.HANDSHAKING:
            self.state = DtlsState.CLOSED
        self._timer_deadline = None
        return []

    # -- internals -----------------------------------------------------------------------

    def _advance_handshake(self, now: float) -> None:
        try:
            self._connection.do_handshake()
        except SSL.WantReadError:
            return
        except SSL.ZeroReturnError:
            self._fail("peer closed the connection during the handshake")
            return
        except SSL.Error as exc:
            self._fail(self._reason(exc))
            return
        self._on_handshake_done(now)

    def _on_handshake_done(self, now: float) -> None:
        connection = self._connection
        check = self._check
        # Verified again here, not only in the callback: whatever path OpenSSL took, no
        # keys leave this object for a peer whose certificate we have not matched.
        peer = connection.get_peer_certificate(as_cryptography=True)
        if peer is None:
            if check.required:
                self._fail_after_handshake("peer sent no certificate")
                return
        elif check.algorithm is not None:
            if not check.matches(certificate_digest(peer, check.algorithm)):
                self.fingerprint_mismatch = True
                self._fail_after_handshake("fingerprint mismatch")
                return
        elif check.required:
            self._fail_after_handshake("no usable fingerprint")
            return
        try:
            profile = SrtpProfile.from_dtls_name(connection.get_selected_srtp_profile())
        except LocalMediaError:
            # RFC 5764 section 4.1.2: a server with no profile in common omits use_srtp,
            # and the handshake completes without one.
            self._fail_after_handshake("no SRTP profile negotiated")
            return
        material_bytes = 2 * (profile.key_length + profile.salt_length)
        material = connection.export_keying_material(_EXPORTER_LABEL, material_bytes)
        key, salt = profile.key_length, profile.salt_length
        client_key = material[:key] + material[2 * key : 2 * key + salt]
        server_key = material[key : 2 * key] + material[2 * key + salt :]
        self._keys = (client_key, server_key)
        self.srtp_profile = profile
        self.cipher = connection.get_cipher_name()
        self.state = DtlsState.CONNECTED
        self.completed_at = now

    def _read_records(self) -> None:
        """CONNECTED: let OpenSSL process what arrived; there is no application data."""
        while True:
            try:
                # WebRTC data channels would arrive here as application data; this gateway
                # negotiates none, so anything read is discarded.
                self._connection.recv(_BIO_READ_BYTES)
            except SSL.WantReadError:
                return
            except SSL.ZeroReturnError:
                # close_notify: answer with ours (RFC 5246 section 7.2.1).
                self.state = DtlsState.CLOSED
                self._shutdown()
                return
            except SSL.Error as exc:
                self._fail(self._reason(exc))
                return

    def _reason(self, error: SSL.Error) -> str:
        if self._check.failure is not None:
            return self._check.failure
        reasons = _error_reasons(error)
        for reason in reasons:
            # OpenSSL words received alerts "sslv3 alert <description>" or "tlsv1 alert ...".
            marker = reason.find("alert ")
            if marker >= 0:
                return f"peer sent alert {reason[marker + len('alert ') :]}"
        if reasons:
            return reasons[0]
        return "handshake failed"

    def _fail(self, reason: str) -> None:
        self.state = DtlsState.FAILED
        self.failure = reason
        self.fingerprint_mismatch = self.fingerprint_mismatch or self._check.mismatch
        self._timer_deadline = None

    def _fail_after_handshake(self, reason: str) -> None:
        # The handshake is over, so no fatal alert can be queued any more; a close_notify
        # at least tells the peer to stop.
        self._fail(reason)
        self._shutdown()

    def _shutdown(self) -> None:
        try:
            self._connection.shutdown()
        except SSL.Error:
            # Nothing to send on a broken connection; we are done with it either way.
            return

    def _flush(self, now: float) -> list[bytes]:
        """Drain the outgoing BIO and re-arm the retransmission deadline."""
        datagrams = self._drain()
        if self.state is DtlsState.HANDSHAKING:
            timeout = self._connection.DTLSv1_get_timeout()
            self._timer_deadline = None if timeout is None else now + timeout
        else:
            self._timer_deadline = None
        return datagrams

    def _drain(self) -> list[bytes]:
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self._connection.bio_read(_BIO_READ_BYTES)
            except SSL.WantReadError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        if not chunks:
            return []
        datagrams = _pack_records(b"".join(chunks), self._mtu)
        for datagram in datagrams:
            size = len(datagram)
            self.largest_datagram = max(self.largest_datagram, size)
            if len(self.flights) < _MAX_RECORDED_DATAGRAMS:
                self.flights.append(size)
        return datagrams
