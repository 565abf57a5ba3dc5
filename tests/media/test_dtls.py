"""DTLS-SRTP endpoints in pairs over an in-memory link (h11 ``ConnectionPair`` spirit).

Each test builds a client and a server ``DtlsEndpoint``, carries the datagrams one returns
to the other, and asserts what both observe: states, failure reasons, SRTP keys that
interoperate, and the size of every datagram on the wire.
"""

from __future__ import annotations

import datetime
import random
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtcgw.config import DtlsKeyType
from rtcgw.media.certificates import DtlsCertificate, DtlsPrivateKey, generate_certificate
from rtcgw.media.dtls import (
    DtlsContexts,
    DtlsEndpoint,
    DtlsRole,
    DtlsSettings,
    DtlsState,
)
from rtcgw.media.errors import LocalMediaError, MediaConfigError
from rtcgw.media.srtp import SrtpProfile

CLIENT = "client"
SERVER = "server"
DTLS_PROFILES = [SrtpProfile.AEAD_AES_128_GCM, SrtpProfile.AES_CM_128_HMAC_SHA1_80]


# -- the link ---------------------------------------------------------------------------------


@dataclass
class Link:
    """Carries datagrams between two endpoints; records every flight (one call's output)."""

    client: DtlsEndpoint
    server: DtlsEndpoint
    now: float = 100.0
    #: (sender, datagrams) of every flight, in order, dropped ones included
    flights: list[tuple[str, list[bytes]]] = field(default_factory=list)
    #: decides, per (sender, nth flight of that sender), whether the flight is lost
    drop: Callable[[str, int], bool] = lambda sender, nth: False
    #: called before each delivered datagram, e.g. to inject noise
    before_delivery: Callable[[DtlsEndpoint], None] = lambda endpoint: None

    def endpoint(self, side: str) -> DtlsEndpoint:
        return self.client if side == CLIENT else self.server

    def pump(self, sender: str, datagrams: list[bytes]) -> None:
        pending: deque[tuple[str, list[bytes]]] = deque([(sender, datagrams)])
        while pending:
            side, flight = pending.popleft()
            if not flight:
                continue
            nth = sum(1 for s, _ in self.flights if s == side)
            self.flights.append((side, flight))
            if self.drop(side, nth):
                continue
            receiver_side = SERVER if side == CLIENT else CLIENT
            receiver = self.endpoint(receiver_side)
            replies: list[bytes] = []
            for datagram in flight:
                self.before_delivery(receiver)
                replies.extend(receiver.receive_untrusted(datagram, self.now))
            pending.append((receiver_side, replies))

    def handshake(self) -> None:
        self.server.start(self.now)
        self.pump(CLIENT, self.client.start(self.now))

    def sizes(self) -> list[tuple[str, list[int]]]:
        return [(side, [len(d) for d in flight]) for side, flight in self.flights]


def settings_for(certificate: DtlsCertificate | None = None, **changes: object) -> DtlsSettings:
    base = DtlsSettings(certificate=certificate or EC_CERTIFICATE)
    return replace(base, **changes)  # type: ignore[arg-type]


def fingerprints_of(contexts: DtlsContexts) -> list[tuple[str, str]]:
    return [(contexts.fingerprint_algorithm, contexts.fingerprint_value)]


def make_link(
    client_settings: DtlsSettings | None = None,
    server_settings: DtlsSettings | None = None,
    *,
    client_expects: list[tuple[str, str]] | None = None,
    server_expects: list[tuple[str, str]] | None = None,
) -> Link:
    """A client and a server endpoint that expect each other's real fingerprint by default."""
    client_contexts = DtlsContexts(client_settings or settings_for())
    server_contexts = DtlsContexts(server_settings or settings_for(SERVER_CERTIFICATE))
    client = DtlsEndpoint(
        client_contexts,
        DtlsRole.CLIENT,
        fingerprints_of(server_contexts) if client_expects is None else client_expects,
    )
    server = DtlsEndpoint(
        server_contexts,
        DtlsRole.SERVER,
        fingerprints_of(client_contexts) if server_expects is None else server_expects,
    )
    return Link(client, server)


EC_CERTIFICATE = generate_certificate(DtlsKeyType.EC_P256)
SERVER_CERTIFICATE = generate_certificate(DtlsKeyType.EC_P256)
OTHER_CERTIFICATE = generate_certificate(DtlsKeyType.EC_P256)


def rtp(seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 111, seq, seq * 960, 0xCAFE0001) + bytes(range(120))


def rtcp() -> bytes:
    return struct.pack("!BBHI", 0x80, 201, 1, 0xCAFE0001)


def assert_media_flows(link: Link) -> None:
    """RTP and RTCP protected on either side unprotect on the other."""
    client_srtp = link.client.srtp_session()
    server_srtp = link.server.srtp_session()
    for seq in range(1, 6):
        assert server_srtp.unprotect(client_srtp.protect(rtp(seq))) == rtp(seq)
        assert client_srtp.unprotect(server_srtp.protect(rtp(seq))) == rtp(seq)
    assert server_srtp.unprotect_rtcp(client_srtp.protect_rtcp(rtcp())) == rtcp()
    assert client_srtp.unprotect_rtcp(server_srtp.protect_rtcp(rtcp())) == rtcp()


def records(datagram: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(content type, epoch, fragment) of each DTLS record in a datagram."""
    position = 0
    while position < len(datagram):
        content_type = datagram[position]
        epoch = int.from_bytes(datagram[position + 3 : position + 5], "big")
        length = int.from_bytes(datagram[position + 11 : position + 13], "big")
        yield content_type, epoch, datagram[position + 13 : position + 13 + length]
        position += 13 + length


def print_flights(title: str, link: Link) -> None:
    print(f"\n{title}")
    for number, (side, sizes) in enumerate(link.sizes(), start=1):
        print(f"  flight {number} {side:6}: datagrams {sizes}, largest {max(sizes)} B")


# -- handshakes that succeed ------------------------------------------------------------------


def test_contexts_fingerprint() -> None:
    contexts = DtlsContexts(settings_for())
    assert contexts.fingerprint_algorithm == "sha-256"
    assert contexts.fingerprint_value == EC_CERTIFICATE.fingerprint("sha-256")
    assert contexts.fingerprint == f"sha-256 {contexts.fingerprint_value}"


def test_handshake_completes_and_keys_agree() -> None:
    link = make_link()
    assert (link.client.state, link.server.state) == (DtlsState.NEW, DtlsState.NEW)
    link.handshake()
    for endpoint in (link.client, link.server):
        assert endpoint.state is DtlsState.CONNECTED, endpoint.failure
        assert endpoint.failure is None
        assert endpoint.fingerprint_mismatch is False
        assert endpoint.started_at == link.now
        assert endpoint.completed_at == link.now
        assert endpoint.srtp_profile is SrtpProfile.AEAD_AES_128_GCM
        assert endpoint.cipher is not None
        assert endpoint.cipher.startswith("ECDHE-ECDSA-")
        assert endpoint.next_deadline() is None
    assert link.client.role is DtlsRole.CLIENT
    assert link.server.role is DtlsRole.SERVER
    assert link.client.cipher == link.server.cipher
    assert_media_flows(link)


@pytest.mark.parametrize("profile", DTLS_PROFILES, ids=lambda p: p.value)
@pytest.mark.parametrize("restricted", [CLIENT, SERVER])
def test_each_profile_when_one_side_offers_only_it(profile: SrtpProfile, restricted: str) -> None:
    only = settings_for(srtp_profiles=(profile,))
    if restricted == CLIENT:
        link = make_link(client_settings=only)
    else:
        link = make_link(server_settings=replace(only, certificate=SERVER_CERTIFICATE))
    link.handshake()
    assert link.client.state is DtlsState.CONNECTED, link.client.failure
    assert link.server.state is DtlsState.CONNECTED, link.server.failure
    assert link.client.srtp_profile is profile
    assert link.server.srtp_profile is profile
    assert_media_flows(link)


def test_server_preference_decides_when_both_offer_both() -> None:
    link = make_link(
        client_settings=settings_for(srtp_profiles=tuple(reversed(DTLS_PROFILES))),
    )
    link.handshake()
    # RFC 5764 4.1.1: the server picks; OpenSSL picks by its own list's order.
    assert link.server.srtp_profile is SrtpProfile.AEAD_AES_128_GCM
    assert link.client.srtp_profile is SrtpProfile.AEAD_AES_128_GCM


def test_no_common_profile_fails_both() -> None:
    link = make_link(
        client_settings=settings_for(srtp_profiles=(SrtpProfile.AEAD_AES_128_GCM,)),
        server_settings=settings_for(
            SERVER_CERTIFICATE, srtp_profiles=(SrtpProfile.AES_CM_128_HMAC_SHA1_80,)
        ),
    )
    link.handshake()
    for endpoint in (link.client, link.server):
        assert endpoint.state is DtlsState.FAILED
        assert endpoint.failure == "no SRTP profile negotiated"
        with pytest.raises(LocalMediaError, match="no SRTP keys"):
            endpoint.srtp_session()


def test_one_contexts_object_serves_many_endpoints_in_both_roles() -> None:
    shared = DtlsContexts(settings_for())
    peer = DtlsContexts(settings_for(SERVER_CERTIFICATE))
    links = [
        Link(
            DtlsEndpoint(shared, DtlsRole.CLIENT, fingerprints_of(peer)),
            DtlsEndpoint(peer, DtlsRole.SERVER, fingerprints_of(shared)),
        ),
        Link(
            DtlsEndpoint(peer, DtlsRole.CLIENT, fingerprints_of(shared)),
            DtlsEndpoint(shared, DtlsRole.SERVER, fingerprints_of(peer)),
        ),
    ]
    for link in links:
        link.handshake()
        assert link.client.state is DtlsState.CONNECTED
        assert link.server.state is DtlsState.CONNECTED
        assert_media_flows(link)


def test_server_starts_on_client_hello_without_start() -> None:
    link = make_link()
    link.pump(CLIENT, link.client.start(link.now))
    assert link.server.state is DtlsState.CONNECTED
    assert link.server.started_at == link.now


# -- datagram sizes ---------------------------------------------------------------------------


def test_ec_certificate_every_datagram_fits_1200() -> None:
    link = make_link()
    link.handshake()
    print_flights("EC P-256, MTU 1200", link)
    assert link.client.state is DtlsState.CONNECTED
    sizes = [size for _, flight in link.sizes() for size in flight]
    assert max(sizes) <= 1200
    # One datagram per flight: nothing needed fragmenting.
    assert [len(flight) for _, flight in link.flights] == [1, 1, 1, 1]
    assert [side for side, _ in link.flights] == [CLIENT, SERVER, CLIENT, SERVER]
    assert link.client.flights == [len(link.flights[0][1][0]), len(link.flights[2][1][0])]
    assert link.server.largest_datagram == max(link.server.flights)


def _issue(
    subject: str,
    key: DtlsPrivateKey,
    issuer: str,
    issuer_key: DtlsPrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=10))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


@dataclass(frozen=True)
class OperatorChain:
    certificate: DtlsCertificate  #: RSA 4096 leaf + intermediate
    root_pem: bytes


@pytest.fixture(scope="module")
def operator_chain() -> OperatorChain:
    """An RSA 4096 leaf signed by an RSA intermediate signed by a root (made once: slow)."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    intermediate_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    root = _issue("Test Root", root_key, "Test Root", root_key, ca=True)
    intermediate = _issue("Test Intermediate", intermediate_key, "Test Root", root_key, ca=True)
    leaf = _issue("gateway.example", leaf_key, "Test Intermediate", intermediate_key, ca=False)
    return OperatorChain(
        DtlsCertificate(leaf, leaf_key, (intermediate,)),
        root.public_bytes(serialization.Encoding.PEM),
    )


def _fragmented_handshake_messages(flight: list[bytes]) -> int:
    """How many handshake fragments (RFC 6347 4.2.3) are smaller than their message."""
    count = 0
    for datagram in flight:
        for content_type, epoch, fragment in records(datagram):
            if content_type == 22 and epoch == 0:
                length = int.from_bytes(fragment[1:4], "big")
                fragment_length = int.from_bytes(fragment[9:12], "big")
                count += fragment_length < length
    return count


@pytest.mark.parametrize("mtu", [1200, 600])
@pytest.mark.parametrize("operator_side", [CLIENT, SERVER])
def test_rsa_4096_chain_fragments_within_mtu(
    operator_chain: OperatorChain, mtu: int, operator_side: str
) -> None:
    operator = settings_for(operator_chain.certificate, mtu=mtu)
    peer = settings_for(SERVER_CERTIFICATE, mtu=mtu)
    if operator_side == CLIENT:
        link = make_link(client_settings=operator, server_settings=peer)
    else:
        link = make_link(
            client_settings=replace(peer, certificate=EC_CERTIFICATE), server_settings=operator
        )
    link.handshake()
    print_flights(f"RSA 4096 + intermediate on the {operator_side}, MTU {mtu}", link)
    assert link.client.state is DtlsState.CONNECTED, link.client.failure
    assert link.server.state is DtlsState.CONNECTED, link.server.failure
    assert_media_flows(link)
    sizes = [size for _, flight in link.sizes() for size in flight]
    assert max(sizes) <= mtu
    operator_endpoint = link.endpoint(operator_side)
    assert operator_endpoint.largest_datagram <= mtu
    operator_flights = [flight for side, flight in link.flights if side == operator_side]
    # The certificate flight spans several datagrams, cut by DTLS into message fragments.
    certificate_flight = max(operator_flights, key=len)
    assert len(certificate_flight) >= 2
    assert _fragmented_handshake_messages(certificate_flight) >= 1


def test_ca_file_accepts_a_chain_that_verifies(
    operator_chain: OperatorChain, tmp_path: Path
) -> None:
    ca_file = tmp_path / "root.pem"
    ca_file.write_bytes(operator_chain.root_pem)
    link = make_link(
        client_settings=settings_for(ca_file=ca_file),
        server_settings=settings_for(operator_chain.certificate),
    )
    link.handshake()
    assert link.client.state is DtlsState.CONNECTED, link.client.failure
    assert link.server.state is DtlsState.CONNECTED, link.server.failure


def test_ca_file_rejects_a_chain_that_does_not(
    operator_chain: OperatorChain, tmp_path: Path
) -> None:
    other_root = generate_certificate(DtlsKeyType.EC_P256).certificate
    ca_file = tmp_path / "other-root.pem"
    ca_file.write_bytes(other_root.public_bytes(serialization.Encoding.PEM))
    link = make_link(
        client_settings=settings_for(ca_file=ca_file),
        server_settings=settings_for(operator_chain.certificate),
    )
    link.handshake()
    assert link.client.state is DtlsState.FAILED
    assert link.client.failure is not None
    assert link.client.failure.startswith("certificate verify failed: ")
    assert link.client.fingerprint_mismatch is False
    assert link.server.state is DtlsState.FAILED
    assert link.server.failure is not None
    assert link.server.failure.startswith("peer sent alert ")


# -- fingerprints -----------------------------------------------------------------------------


@pytest.mark.parametrize("checking_side", [CLIENT, SERVER])
def test_fingerprint_mismatch_fails_both_sides(checking_side: str) -> None:
    wrong = [("sha-256", OTHER_CERTIFICATE.fingerprint("sha-256"))]
    if checking_side == CLIENT:
        link = make_link(client_expects=wrong)
    else:
        link = make_link(server_expects=wrong)
    link.handshake()  # never raises
    checker = link.endpoint(checking_side)
    peer = link.endpoint(SERVER if checking_side == CLIENT else CLIENT)
    assert checker.state is DtlsState.FAILED
    assert checker.failure == "fingerprint mismatch"
    assert checker.fingerprint_mismatch is True
    assert checker.srtp_profile is None
    assert checker.next_deadline() is None
    with pytest.raises(LocalMediaError):
        checker.srtp_session()
    # The fatal alert reached the peer, which fails too instead of waiting for a timeout.
    assert link.flights[-1][0] == checking_side
    assert peer.state is DtlsState.FAILED
    assert peer.failure is not None
    assert peer.failure.startswith("peer sent alert ")
    assert peer.fingerprint_mismatch is False
    with pytest.raises(LocalMediaError):
        peer.srtp_session()
    # Nothing more comes out of either.
    assert checker.receive_untrusted(link.flights[0][1][0], link.now) == []
    assert checker.close() == []


def _all_three(certificate: DtlsCertificate) -> dict[str, str]:
    return {name: certificate.fingerprint(name) for name in ("sha-256", "sha-384", "sha-512")}


def test_strongest_fingerprint_decides_even_if_a_weaker_one_matches() -> None:
    right = _all_three(SERVER_CERTIFICATE)
    expects = [
        ("sha-256", right["sha-256"]),
        ("sha-384", right["sha-384"]),
        ("sha-512", OTHER_CERTIFICATE.fingerprint("sha-512")),
    ]
    link = make_link(client_expects=expects)
    link.handshake()
    assert link.client.state is DtlsState.FAILED
    assert link.client.fingerprint_mismatch is True


def test_strongest_fingerprint_matching_is_enough() -> None:
    right = _all_three(SERVER_CERTIFICATE)
    expects = [
        ("SHA-256", OTHER_CERTIFICATE.fingerprint("sha-256")),  # weaker and wrong: unused
        ("sha-512", right["sha-512"].lower()),  # case does not matter
    ]
    link = make_link(client_expects=expects)
    link.handshake()
    assert link.client.state is DtlsState.CONNECTED, link.client.failure


def test_malformed_strongest_fingerprint_is_skipped() -> None:
    right = _all_three(SERVER_CERTIFICATE)
    expects = [
        ("sha-512", "not hex"),
        ("sha-384", right["sha-384"][:-3]),  # one byte short
        ("sha-256", right["sha-256"]),
    ]
    link = make_link(client_expects=expects)
    link.handshake()
    assert link.client.state is DtlsState.CONNECTED, link.client.failure


def test_one_of_several_certificates_may_match() -> None:
    right = SERVER_CERTIFICATE.fingerprint("sha-256")
    link = make_link(
        client_expects=[("sha-256", OTHER_CERTIFICATE.fingerprint("sha-256")), ("sha-256", right)]
    )
    link.handshake()
    assert link.client.state is DtlsState.CONNECTED, link.client.failure


@pytest.mark.parametrize(
    "expects",
    [[], [("sha-1", "AB:" * 19 + "CD")], [("md5", "00:" * 15 + "00")], [("sha-256", "zz")]],
    ids=["none", "sha-1", "md5", "garbage"],
)
@pytest.mark.parametrize("checking_side", [CLIENT, SERVER])
def test_no_usable_fingerprint(expects: list[tuple[str, str]], checking_side: str) -> None:
    if checking_side == CLIENT:
        link = make_link(client_expects=expects)
    else:
        link = make_link(server_expects=expects)
    link.handshake()
    checker = link.endpoint(checking_side)
    assert checker.state is DtlsState.FAILED
    assert checker.failure == "no usable fingerprint"
    assert checker.fingerprint_mismatch is False


def test_optional_peer_certificate_accepts_unchecked_peer() -> None:
    link = make_link(
        client_settings=settings_for(require_peer_certificate=False), client_expects=[]
    )
    link.handshake()
    assert link.client.state is DtlsState.CONNECTED, link.client.failure
    assert_media_flows(link)


def test_optional_peer_certificate_still_checks_a_given_fingerprint() -> None:
    link = make_link(
        server_settings=settings_for(SERVER_CERTIFICATE, require_peer_certificate=False),
        server_expects=[("sha-256", OTHER_CERTIFICATE.fingerprint())],
    )
    link.handshake()
    assert link.server.state is DtlsState.FAILED
    assert link.server.fingerprint_mismatch is True


# -- loss and retransmission ------------------------------------------------------------------


def _retransmit_when_due(link: Link) -> list[bytes]:
    """Wait (wall clock) until the client's timer fires; return what it retransmits."""
    deadline = link.client.next_deadline()
    assert deadline is not None
    assert link.now < deadline <= link.now + 1.0
    assert link.client.handle_timeout(link.now) == []  # too early: nothing fires
    give_up = time.monotonic() + 10.0
    retransmitted: list[bytes] = []
    while not retransmitted and time.monotonic() < give_up:
        time.sleep(0.05)
        link.now = max(link.now + 0.05, deadline)
        retransmitted = link.client.handle_timeout(link.now)
    assert retransmitted, "the client never retransmitted"
    return retransmitted


def test_lost_server_flights_are_recovered_by_retransmission() -> None:
    # OpenSSL's retransmission timer runs on the wall clock (1 s first): this test waits
    # about 2 s, the only one that does. Both server flights are lost once: the first is
    # recovered while both sides handshake, the last after the server is already CONNECTED
    # and must answer the client's retransmitted flight (RFC 6347 section 4.2.4).
    # Server flights in order: 0 = its first flight (lost), 1 = that flight again,
    # 2 = its final flight (lost), 3 = the final flight again.
    link = make_link()
    link.drop = lambda sender, nth: sender == SERVER and nth in {0, 2}
    link.handshake()
    assert link.client.state is DtlsState.HANDSHAKING
    assert link.server.state is DtlsState.HANDSHAKING
    link.pump(CLIENT, _retransmit_when_due(link))
    assert [side for side, _ in link.flights] == [CLIENT, SERVER, CLIENT, SERVER, CLIENT, SERVER]
    assert link.server.state is DtlsState.CONNECTED, link.server.failure
    assert link.client.state is DtlsState.HANDSHAKING
    link.pump(CLIENT, _retransmit_when_due(link))
    assert link.client.state is DtlsState.CONNECTED, link.client.failure
    assert link.server.completed_at is not None
    assert link.client.completed_at is not None
    assert link.client.completed_at > link.server.completed_at
    assert_media_flows(link)


def test_replayed_final_flight_is_ignored_by_a_connected_server() -> None:
    # A byte-identical copy (same record sequence numbers) is a replay, not a retransmission
    # (RFC 6347 section 4.1.2.6): dropped, and the connection stays up.
    link = make_link()
    link.handshake()
    client_final = [flight for side, flight in link.flights if side == CLIENT][-1]
    for datagram in client_final:
        assert link.server.receive_untrusted(datagram, link.now) == []
    assert link.server.state is DtlsState.CONNECTED
    assert_media_flows(link)


def test_handshake_budget() -> None:
    link = make_link()
    link.server.start(link.now)
    assert link.server.next_deadline() == link.now + 30.0
    hello = link.client.start(link.now)
    assert hello
    assert link.client.handle_timeout(link.now + 29.0) == []
    assert link.client.state is DtlsState.HANDSHAKING
    assert link.client.handle_timeout(link.now + 30.0) == []
    assert link.client.state is DtlsState.FAILED
    assert link.client.failure == "handshake timeout"
    assert link.client.next_deadline() is None
    assert link.server.handle_timeout(link.now + 31.0) == []
    assert link.server.failure == "handshake timeout"


def test_custom_budget_and_idle_endpoints() -> None:
    link = make_link(client_settings=settings_for(handshake_timeout_s=2.5))
    assert link.client.next_deadline() is None  # NEW: nothing to wait for
    assert link.client.handle_timeout(link.now) == []
    link.client.start(link.now)
    deadline = link.client.next_deadline()
    assert deadline is not None
    assert deadline <= link.now + 2.5
    link.client.handle_timeout(link.now + 2.5)
    assert link.client.failure == "handshake timeout"


# -- untrusted input --------------------------------------------------------------------------


def _garbage() -> list[bytes]:
    rng = random.Random(5764)
    samples = [
        b"",
        b"\x16",
        b"\x16\xfe\xfd",
        b"\x16\xfe\xfd" + b"\x00" * 10,  # header of an empty record
        b"\x16\xfe\xfd" + b"\x00" * 8 + b"\x00\x20" + b"\x01" * 8,  # truncated record
        b"\x17\xfe\xfd" + b"\x00\x01" + b"\x00" * 6 + b"\x00\x10" + b"\x42" * 16,  # app data
        b"\x15\xfe\xfd" + b"\x00" * 8 + b"\x00\x02" + b"\x02\x28",  # fatal alert, epoch 0
        b"\x80\x00\x00\x01" + b"\x00" * 40,  # RTP
        b"\x00\x01\x00\x00\x21\x12\xa4\x42" + b"\x00" * 12,  # STUN
    ]
    samples += [rng.randbytes(rng.randrange(1, 300)) for _ in range(40)]
    # Whole records of every content type with random bodies.
    for content_type in (20, 21, 22, 23, 24, 25):
        body = rng.randbytes(rng.randrange(0, 200))
        samples.append(
            bytes([content_type, 0xFE, 0xFD])
            + rng.randbytes(8)
            + len(body).to_bytes(2, "big")
            + body
        )
    return samples


GARBAGE = _garbage()
ALIVE_OR_DEAD = {
    DtlsState.NEW,
    DtlsState.HANDSHAKING,
    DtlsState.CONNECTED,
    DtlsState.FAILED,
    DtlsState.CLOSED,
}


@pytest.mark.parametrize("stage", ["new", "handshaking", "connected"])
@pytest.mark.parametrize("role", [DtlsRole.CLIENT, DtlsRole.SERVER])
def test_garbage_never_raises(stage: str, role: DtlsRole) -> None:
    for datagram in GARBAGE:
        link = make_link()
        if stage == "handshaking":
            link.drop = lambda sender, nth: nth >= 1  # stop after the first flight each way
            link.handshake()
        elif stage == "connected":
            link.handshake()
        endpoint = link.client if role is DtlsRole.CLIENT else link.server
        before = endpoint.state
        out = endpoint.receive_untrusted(datagram, link.now)
        assert isinstance(out, list)
        assert endpoint.state in ALIVE_OR_DEAD
        if endpoint.state is DtlsState.FAILED:
            assert endpoint.failure
        if before is DtlsState.CONNECTED and endpoint.state is DtlsState.CONNECTED:
            endpoint.srtp_session()  # keys still there


def test_malformed_datagrams_do_not_disturb_a_handshake() -> None:
    link = make_link()
    noise = [d for d in GARBAGE if d[:1] not in {bytes([t]) for t in range(20, 26)}]
    noise += [b"\x16\xfe\xfd" + b"\x00" * 8 + b"\x00\x20" + b"\x01" * 8, b"\x16\xfe"]

    def inject(endpoint: DtlsEndpoint) -> None:
        for datagram in noise:
            assert endpoint.receive_untrusted(datagram, link.now) == []

    link.before_delivery = inject
    link.handshake()
    assert link.client.state is DtlsState.CONNECTED, link.client.failure
    assert link.server.state is DtlsState.CONNECTED, link.server.failure
    assert link.client.dropped_datagrams >= len(noise)
    assert link.server.dropped_datagrams >= len(noise)
    assert_media_flows(link)


def test_new_client_ignores_datagrams_before_start() -> None:
    link = make_link()
    hello = DtlsEndpoint(DtlsContexts(settings_for(OTHER_CERTIFICATE)), DtlsRole.CLIENT, []).start(
        0.0
    )
    assert link.client.receive_untrusted(hello[0], link.now) == []
    assert link.client.state is DtlsState.NEW
    assert link.client.dropped_datagrams == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datagram=st.binary(max_size=400), as_record=st.booleans())
def test_fuzz_connected_endpoint(datagram: bytes, as_record: bool) -> None:
    link = make_link()
    link.handshake()
    if as_record:  # frame it so it reaches OpenSSL
        datagram = (
            b"\x17\xfe\xfd\x00\x01" + b"\x00" * 6 + len(datagram).to_bytes(2, "big") + datagram
        )
    link.server.receive_untrusted(datagram, link.now)
    link.client.receive_untrusted(datagram, link.now)
    assert link.server.state in {DtlsState.CONNECTED, DtlsState.FAILED}
    assert link.client.state in {DtlsState.CONNECTED, DtlsState.FAILED}


# -- close --------------------------------------------------------------------------------


@pytest.mark.parametrize("closing_side", [CLIENT, SERVER])
def test_close_notify_closes_the_peer(closing_side: str) -> None:
    link = make_link()
    link.handshake()
    closer = link.endpoint(closing_side)
    peer = link.endpoint(SERVER if closing_side == CLIENT else CLIENT)
    goodbye = closer.close()
    assert goodbye
    assert closer.state is DtlsState.CLOSED
    with pytest.raises(LocalMediaError, match="closed"):
        closer.srtp_session()
    link.pump(closing_side, goodbye)
    assert peer.state is DtlsState.CLOSED
    assert peer.failure is None
    assert closer.close() == []


def test_close_before_connected_sends_nothing() -> None:
    link = make_link()
    assert link.client.close() == []
    assert link.client.state is DtlsState.CLOSED
    link.server.start(link.now)
    assert link.server.close() == []
    assert link.server.state is DtlsState.CLOSED
    assert link.server.next_deadline() is None


# -- API misuse and configuration -------------------------------------------------------------


def test_start_twice_is_a_local_error() -> None:
    link = make_link()
    link.client.start(link.now)
    with pytest.raises(LocalMediaError, match="cannot start: it is handshaking"):
        link.client.start(link.now)


def test_srtp_session_before_connected() -> None:
    with pytest.raises(LocalMediaError, match="new"):
        make_link().client.srtp_session()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mtu": 100}, "mtu 100"),
        ({"mtu": 70000}, "mtu 70000"),
        ({"srtp_profiles": ()}, "empty"),
        ({"srtp_profiles": (SrtpProfile.AES_CM_128_HMAC_SHA1_32,)}, "AES_CM_128_HMAC_SHA1_32"),
        ({"srtp_profiles": (SrtpProfile.AEAD_AES_128_GCM,) * 2}, "twice"),
        ({"handshake_timeout_s": 0.0}, "handshake_timeout_s"),
    ],
)
def test_settings_validation(changes: dict[str, object], message: str) -> None:
    with pytest.raises(MediaConfigError, match=message):
        settings_for(**changes)


def test_unreadable_ca_file(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_bytes(b"not a certificate\n")
    with pytest.raises(MediaConfigError, match=r"ca\.pem: cannot load the DTLS CA file"):
        DtlsContexts(settings_for(ca_file=bad))


def test_certificate_and_key_that_do_not_match() -> None:
    mixed = DtlsCertificate(EC_CERTIFICATE.certificate, OTHER_CERTIFICATE.key)
    with pytest.raises(MediaConfigError, match="cannot be used together"):
        DtlsContexts(settings_for(mixed))
