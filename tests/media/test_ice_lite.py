"""IceLiteAgent: every verdict, nomination, consent, restart; and a real aioice agent against it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import cast

import pytest
from aioice import Candidate, Connection, ice, stun

from rtcgw.media.errors import LocalMediaError, RemoteMediaError
from rtcgw.media.ice_lite import (
    ICE_CHARS,
    MAX_VALIDATED_ADDRESSES,
    IceCredentials,
    IceLiteAgent,
    IceResult,
    IceVerdict,
)
from tests.media.test_stun import RFC5769_REQUEST, RFC5769_TRANSACTION_ID

GATEWAY = IceCredentials("gwUfrag1", "gatewayPasswordOf24Chars")
BROWSER = IceCredentials("brws", "browserPassword+22chars")
SOURCE = ("198.51.100.10", 50000)
OTHER = ("198.51.100.10", 50002)


def check(
    *,
    username: str = f"{GATEWAY.ufrag}:{BROWSER.ufrag}",
    key: bytes | None = GATEWAY.pwd.encode(),
    use_candidate: bool = False,
    controlling: bool = True,
    controlled: bool = False,
    fingerprint: bool = True,
    transaction_id: bytes | None = None,
) -> bytes:
    """A Binding request built the way a browser builds a connectivity check."""
    message = stun.Message(stun.Method.BINDING, stun.Class.REQUEST, transaction_id)
    if username:
        message.attributes["USERNAME"] = username
    message.attributes["PRIORITY"] = 1853817087
    if controlling:
        message.attributes["ICE-CONTROLLING"] = 0x0102030405060708
    if controlled:
        message.attributes["ICE-CONTROLLED"] = 0x0807060504030201
    if use_candidate:
        message.attributes["USE-CANDIDATE"] = None
    if key is not None:
        message.add_message_integrity(key)  # adds FINGERPRINT as well
        if not fingerprint:
            del message.attributes["FINGERPRINT"]
    elif fingerprint:
        message.add_fingerprint()
    return bytes(message)


def reply_of(result: IceResult) -> stun.Message:
    assert result.reply is not None
    return stun.parse_message(result.reply)


def new_agent(remote: IceCredentials | None = BROWSER) -> IceLiteAgent:
    return IceLiteAgent(GATEWAY, remote)


# -- credentials --------------------------------------------------------------------------


def test_generated_credentials_follow_rfc8839() -> None:
    seen = set()
    for _ in range(50):
        credentials = IceCredentials.generate()
        assert len(credentials.ufrag) == 8
        assert len(credentials.pwd) == 24
        assert set(credentials.ufrag + credentials.pwd) <= set(ICE_CHARS)
        seen.add(credentials.pwd)
    assert len(seen) == 50
    assert set(ICE_CHARS) == set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def test_password_stays_out_of_repr() -> None:
    assert GATEWAY.pwd not in repr(GATEWAY)
    assert GATEWAY.ufrag in repr(GATEWAY)


@pytest.mark.parametrize(
    ("ufrag", "pwd"),
    [("", "x" * 22), ("ab:c", "x" * 22), ("abcd", ""), ("abcd", "p" * 257), ("ab cd", "x" * 22)],
)
def test_bad_credentials_are_refused(ufrag: str, pwd: str) -> None:
    with pytest.raises(RemoteMediaError, match="ice-"):
        IceCredentials.from_sdp_untrusted(ufrag, pwd)
    with pytest.raises(LocalMediaError, match="ice-"):
        IceCredentials(ufrag, pwd)


def test_peer_credentials_from_sdp() -> None:
    assert IceCredentials.from_sdp_untrusted("a+/9", "y" * 22) == IceCredentials("a+/9", "y" * 22)


# -- verdicts -----------------------------------------------------------------------------


def test_valid_check_is_answered_with_the_mapped_address() -> None:
    agent = new_agent()
    data = check()
    result = agent.receive_untrusted(data, SOURCE, now=10.0)
    assert result.verdict is IceVerdict.ANSWERED
    reply = reply_of(result)
    assert reply.message_method is stun.Method.BINDING
    assert reply.message_class is stun.Class.RESPONSE
    assert reply.transaction_id == stun.parse_message(data).transaction_id
    assert reply.attributes["XOR-MAPPED-ADDRESS"] == SOURCE
    assert reply.check_message_integrity(GATEWAY.pwd.encode())
    assert "FINGERPRINT" in reply.attributes
    assert "USERNAME" not in reply.attributes  # RFC 8489 section 9.1.3
    assert agent.is_validated(SOURCE)
    assert not agent.is_validated(OTHER)
    assert agent.selected is None
    assert agent.first_check_at == 10.0
    assert agent.nominated_at is None
    assert agent.answered == 1


def test_aggressive_nomination_selects_at_once() -> None:
    agent = new_agent()
    result = agent.receive_untrusted(check(use_candidate=True), SOURCE, now=1.0)
    assert result.verdict is IceVerdict.NOMINATED
    assert reply_of(result).attributes["XOR-MAPPED-ADDRESS"] == SOURCE
    assert agent.selected == SOURCE
    assert agent.nominated_at == 1.0
    assert agent.is_validated(SOURCE)


def test_regular_nomination_selects_on_the_later_check() -> None:
    agent = new_agent()
    assert agent.receive_untrusted(check(), SOURCE, now=1.0).verdict is IceVerdict.ANSWERED
    assert agent.receive_untrusted(check(), OTHER, now=1.1).verdict is IceVerdict.ANSWERED
    assert agent.selected is None
    nominate = agent.receive_untrusted(check(use_candidate=True), OTHER, now=1.2)
    assert nominate.verdict is IceVerdict.NOMINATED
    assert agent.selected == OTHER
    assert agent.first_check_at == 1.0
    assert agent.nominated_at == 1.2
    assert agent.answered == 3


def test_latest_nomination_wins() -> None:
    agent = new_agent()
    agent.receive_untrusted(check(use_candidate=True), SOURCE, now=1.0)
    agent.receive_untrusted(check(use_candidate=True), OTHER, now=2.0)
    assert agent.selected == OTHER
    assert agent.nominated_at == 1.0  # the first nomination
    # A check without USE-CANDIDATE does not move the selection back.
    agent.receive_untrusted(check(), SOURCE, now=3.0)
    assert agent.selected == OTHER


def test_wrong_password_gets_401_and_is_counted() -> None:
    agent = new_agent()
    result = agent.receive_untrusted(check(key=b"notThePasswordAtAll1234"), SOURCE, now=1.0)
    assert result.verdict is IceVerdict.BAD_CREDENTIALS
    reply = reply_of(result)
    assert reply.message_class is stun.Class.ERROR
    assert reply.error_code == 401
    assert "MESSAGE-INTEGRITY" not in reply.attributes  # RFC 8489 section 9.1.3
    assert "FINGERPRINT" in reply.attributes
    assert agent.bad_credentials == 1
    assert agent.answered == 0
    assert not agent.is_validated(SOURCE)
    assert agent.first_check_at is None


@pytest.mark.parametrize(
    "username",
    [
        "someoneElse:brws",  # not our ufrag
        f"{GATEWAY.ufrag}:other",  # not the peer's ufrag, which we know
        GATEWAY.ufrag,  # no colon
        f"brws:{GATEWAY.ufrag}",  # the two halves swapped
        f"{GATEWAY.ufrag}x:brws",
    ],
)
def test_wrong_username_gets_401(username: str) -> None:
    agent = new_agent()
    result = agent.receive_untrusted(check(username=username), SOURCE, now=1.0)
    assert result.verdict is IceVerdict.BAD_CREDENTIALS
    assert reply_of(result).error_code == 401
    assert agent.bad_credentials == 1
    assert not agent.is_validated(SOURCE)


def test_any_remote_ufrag_is_accepted_until_the_peer_sdp_arrives() -> None:
    agent = new_agent(remote=None)
    username = f"{GATEWAY.ufrag}:early"
    result = agent.receive_untrusted(check(username=username), SOURCE, now=1.0)
    assert result.verdict is IceVerdict.ANSWERED
    agent.set_remote(BROWSER)
    assert agent.remote == BROWSER
    late = agent.receive_untrusted(check(username=username), SOURCE, now=2.0)
    assert late.verdict is IceVerdict.BAD_CREDENTIALS
    assert agent.receive_untrusted(check(), SOURCE, now=3.0).verdict is IceVerdict.ANSWERED


def test_missing_integrity_gets_400() -> None:
    agent = new_agent()
    result = agent.receive_untrusted(check(key=None), SOURCE, now=1.0)
    assert result.verdict is IceVerdict.BAD_REQUEST
    reply = reply_of(result)
    assert reply.error_code == 400
    assert "MESSAGE-INTEGRITY" not in reply.attributes
    assert agent.bad_requests == 1
    assert agent.bad_credentials == 0
    assert not agent.is_validated(SOURCE)


def test_missing_fingerprint_gets_400() -> None:
    agent = new_agent()
    result = agent.receive_untrusted(check(fingerprint=False), SOURCE, now=1.0)
    assert result.verdict is IceVerdict.BAD_REQUEST
    assert reply_of(result).error_code == 400
    assert not agent.is_validated(SOURCE)


def test_missing_username_gets_400() -> None:
    agent = new_agent()
    result = agent.receive_untrusted(check(username=""), SOURCE, now=1.0)
    assert result.verdict is IceVerdict.BAD_REQUEST
    assert reply_of(result).error_code == 400


def test_peer_claiming_controlled_gets_487_signed() -> None:
    agent = new_agent()
    data = check(controlling=False, controlled=True, use_candidate=True)
    result = agent.receive_untrusted(data, SOURCE, now=1.0)
    assert result.verdict is IceVerdict.ROLE_CONFLICT
    reply = reply_of(result)
    assert reply.error_code == 487
    assert reply.check_message_integrity(GATEWAY.pwd.encode())
    assert "FINGERPRINT" in reply.attributes
    assert agent.role_conflicts == 1
    assert not agent.is_validated(SOURCE)
    assert agent.selected is None


def test_role_conflict_needs_valid_credentials_first() -> None:
    agent = new_agent()
    data = check(controlling=False, controlled=True, key=b"wrongPasswordWrongPassword")
    assert agent.receive_untrusted(data, SOURCE, now=1.0).verdict is IceVerdict.BAD_CREDENTIALS


def test_rfc5769_sample_request_is_a_role_conflict() -> None:
    # The RFC 5769 section 2.1 sample is a check to "evtj" from an agent claiming
    # ICE-CONTROLLED: with the sample's credentials it authenticates, then conflicts.
    agent = IceLiteAgent(
        IceCredentials("evtj", "VOkJxbRl1RmTxUk/WvJxBt"), IceCredentials("h6vY", "x" * 22)
    )
    result = agent.receive_untrusted(RFC5769_REQUEST, SOURCE, now=0.0)
    assert result.verdict is IceVerdict.ROLE_CONFLICT
    assert reply_of(result).transaction_id == RFC5769_TRANSACTION_ID


def test_check_without_role_attributes_is_accepted() -> None:
    # RFC 5245 era agents may send neither ICE-CONTROLLING nor ICE-CONTROLLED.
    agent = new_agent()
    result = agent.receive_untrusted(check(controlling=False), SOURCE, now=1.0)
    assert result.verdict is IceVerdict.ANSWERED


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        bytes(20),
        b"\x16\xfe\xfd" + bytes(30),  # DTLS
        b"\x80\x00" + bytes(30),  # RTP
        b"\x00\x01\x00\x00" + bytes(16),  # no magic cookie
    ],
)
def test_garbage_is_ignored(data: bytes) -> None:
    agent = new_agent()
    result = agent.receive_untrusted(data, SOURCE, now=1.0)
    assert result == IceResult(IceVerdict.IGNORED, None)
    assert not agent.is_validated(SOURCE)


@pytest.mark.parametrize(
    "message_class", [stun.Class.INDICATION, stun.Class.RESPONSE, stun.Class.ERROR]
)
def test_indications_and_responses_are_ignored(message_class: stun.Class) -> None:
    message = stun.Message(stun.Method.BINDING, message_class)
    message.attributes["USERNAME"] = f"{GATEWAY.ufrag}:{BROWSER.ufrag}"
    message.add_message_integrity(GATEWAY.pwd.encode())
    agent = new_agent()
    assert agent.receive_untrusted(bytes(message), SOURCE, now=1.0).verdict is IceVerdict.IGNORED


def test_unvalidated_address_is_not_validated() -> None:
    agent = new_agent()
    agent.receive_untrusted(check(use_candidate=True), SOURCE, now=1.0)
    assert not agent.is_validated(("198.51.100.10", 50001))
    assert not agent.is_validated(("198.51.100.11", 50000))
    assert not agent.is_validated(OTHER)


# -- consent (RFC 7675) -------------------------------------------------------------------


def test_no_consent_question_before_a_selection() -> None:
    agent = new_agent()
    agent.receive_untrusted(check(), SOURCE, now=0.0)
    assert agent.consent_deadline() is None
    assert not agent.consent_expired(1000.0)


def test_consent_expires_after_30_s_without_checks() -> None:
    agent = new_agent()
    agent.receive_untrusted(check(use_candidate=True), SOURCE, now=100.0)
    assert agent.consent_deadline() == 130.0
    assert not agent.consent_expired(100.0)
    assert not agent.consent_expired(129.9)
    assert agent.consent_expired(130.0)
    assert agent.consent_expired(500.0)


def test_checks_every_5_s_keep_consent_alive() -> None:
    agent = new_agent()
    agent.receive_untrusted(check(use_candidate=True), SOURCE, now=0.0)
    for step in range(1, 25):
        now = step * 5.0
        assert agent.receive_untrusted(check(), SOURCE, now=now).verdict is IceVerdict.ANSWERED
        assert not agent.consent_expired(now + 29.0)
    assert agent.consent_expired(120.0 + 30.0)


def test_checks_from_another_address_do_not_keep_the_selected_one_alive() -> None:
    agent = new_agent()
    agent.receive_untrusted(check(use_candidate=True), SOURCE, now=0.0)
    agent.receive_untrusted(check(), OTHER, now=20.0)
    assert agent.consent_expired(30.0)


def test_refused_checks_do_not_refresh_consent() -> None:
    agent = new_agent()
    agent.receive_untrusted(check(use_candidate=True), SOURCE, now=0.0)
    agent.receive_untrusted(check(key=b"wrongPasswordWrongPassword"), SOURCE, now=20.0)
    assert agent.consent_expired(30.0)


def test_consent_timeout_is_configurable() -> None:
    agent = IceLiteAgent(GATEWAY, BROWSER, consent_timeout_s=10.0)
    agent.receive_untrusted(check(use_candidate=True), SOURCE, now=0.0)
    assert agent.consent_expired(10.0)
    with pytest.raises(LocalMediaError, match="consent_timeout_s"):
        IceLiteAgent(GATEWAY, consent_timeout_s=0.0)


# -- ICE restart (RFC 8445 section 9) ------------------------------------------------------

NEW_GATEWAY = IceCredentials("gwUfrag2", "gatewayPasswordNumberTwo")
NEW_BROWSER = IceCredentials("brw2", "browserPassword+22char2")


def new_check(*, use_candidate: bool = False) -> bytes:
    return check(
        username=f"{NEW_GATEWAY.ufrag}:{NEW_BROWSER.ufrag}",
        key=NEW_GATEWAY.pwd.encode(),
        use_candidate=use_candidate,
    )


def test_restart_keeps_the_selected_address_until_a_new_nomination() -> None:
    agent = new_agent()
    agent.receive_untrusted(check(), OTHER, now=0.5)
    agent.receive_untrusted(check(use_candidate=True), SOURCE, now=1.0)
    agent.restart(NEW_GATEWAY, NEW_BROWSER)
    assert agent.local == NEW_GATEWAY
    assert agent.remote == NEW_BROWSER
    # Media keeps flowing on the old selection; other old validations are gone.
    assert agent.selected == SOURCE
    assert agent.is_validated(SOURCE)
    assert not agent.is_validated(OTHER)
    # A check with the new credentials validates without moving the selection.
    assert agent.receive_untrusted(new_check(), OTHER, now=2.0).verdict is IceVerdict.ANSWERED
    assert agent.selected == SOURCE
    assert agent.is_validated(OTHER)
    # Its nomination moves it.
    result = agent.receive_untrusted(new_check(use_candidate=True), OTHER, now=2.1)
    assert result.verdict is IceVerdict.NOMINATED
    assert reply_of(result).check_message_integrity(NEW_GATEWAY.pwd.encode())
    assert agent.selected == OTHER


def test_old_credentials_are_refused_after_restart() -> None:
    agent = new_agent()
    agent.receive_untrusted(check(use_candidate=True), SOURCE, now=1.0)
    agent.restart(NEW_GATEWAY, None)
    result = agent.receive_untrusted(check(use_candidate=True), SOURCE, now=2.0)
    assert result.verdict is IceVerdict.BAD_CREDENTIALS
    assert reply_of(result).error_code == 401
    assert agent.bad_credentials == 1
    assert agent.selected == SOURCE
    # The old consent keeps running: refused checks do not refresh it.
    assert agent.consent_expired(31.0)


def test_restart_before_any_selection() -> None:
    agent = new_agent()
    agent.receive_untrusted(check(), SOURCE, now=1.0)
    agent.restart(NEW_GATEWAY, NEW_BROWSER)
    assert agent.selected is None
    assert not agent.is_validated(SOURCE)


def test_restart_needs_new_credentials() -> None:
    agent = new_agent()
    with pytest.raises(LocalMediaError, match="unchanged"):
        agent.restart(GATEWAY, NEW_BROWSER)


def test_validated_addresses_are_bounded_and_the_selected_one_stays() -> None:
    agent = new_agent()
    agent.receive_untrusted(check(use_candidate=True), SOURCE, now=0.0)
    for port in range(MAX_VALIDATED_ADDRESSES + 10):
        agent.receive_untrusted(check(), ("203.0.113.1", 1000 + port), now=1.0 + port)
    assert agent.is_validated(SOURCE)
    assert agent.selected == SOURCE
    assert not agent.is_validated(("203.0.113.1", 1000))  # the oldest went first
    assert agent.is_validated(("203.0.113.1", 1000 + MAX_VALIDATED_ADDRESSES + 9))


# -- a real ICE agent (aioice, controlling) against ours -----------------------------------


class LiteResponder(asyncio.DatagramProtocol):
    """A loopback UDP socket answering with IceLiteAgent, recording what else arrives."""

    def __init__(self, agent: IceLiteAgent) -> None:
        self.agent = agent
        self.transport: asyncio.DatagramTransport | None = None
        self.verdicts: list[IceVerdict] = []
        self.media: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        source = (addr[0], addr[1])
        result = self.agent.receive_untrusted(data, source, now=asyncio.get_running_loop().time())
        if result.verdict is IceVerdict.IGNORED:
            self.media.put_nowait((data, source))
            return
        self.verdicts.append(result.verdict)
        if result.reply is not None and self.transport is not None:
            self.transport.sendto(result.reply, source)


@pytest.fixture
def loopback_host_candidates(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # aioice leaves 127.0.0.1 out of its host candidates; the test network is loopback.
    monkeypatch.setattr(ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    yield


async def run_aioice_against_lite_agent(*, remote_is_lite: bool) -> None:
    loop = asyncio.get_running_loop()
    gateway = IceCredentials.generate()
    agent = IceLiteAgent(gateway)
    transport, responder = await loop.create_datagram_endpoint(
        lambda: LiteResponder(agent), local_addr=("127.0.0.1", 0)
    )
    gateway_address = transport.get_extra_info("sockname")[:2]
    connection = Connection(ice_controlling=True, use_ipv6=False)
    try:
        await connection.gather_candidates()
        agent.set_remote(
            IceCredentials.from_sdp_untrusted(connection.local_username, connection.local_password)
        )
        connection.remote_is_lite = remote_is_lite
        connection.remote_username = gateway.ufrag
        connection.remote_password = gateway.pwd
        await connection.add_remote_candidate(
            Candidate(
                foundation="1",
                component=1,
                transport="udp",
                priority=2130706431,
                host=gateway_address[0],
                port=gateway_address[1],
                type="host",
            )
        )
        await connection.add_remote_candidate(None)
        await asyncio.wait_for(connection.connect(), timeout=10)

        # aioice sends media to the pair it nominated: that must be the address we selected.
        await connection.send(b"\x80\x00media after ICE")
        data, source = await asyncio.wait_for(responder.media.get(), timeout=10)
        assert data == b"\x80\x00media after ICE"
        assert agent.selected == source
        assert agent.is_validated(source)
        (local_candidate,) = connection.local_candidates
        assert source == (local_candidate.host, local_candidate.port)
        assert IceVerdict.NOMINATED in responder.verdicts
        if remote_is_lite:
            # Regular nomination: a plain check first, then one with USE-CANDIDATE.
            assert responder.verdicts[0] is IceVerdict.ANSWERED
        else:
            assert responder.verdicts[0] is IceVerdict.NOMINATED
        assert agent.bad_credentials == 0
        assert agent.first_check_at is not None
        assert agent.nominated_at is not None
    finally:
        await connection.close()
        transport.close()


@pytest.mark.usefixtures("loopback_host_candidates")
@pytest.mark.parametrize("remote_is_lite", [True, False], ids=["regular", "aggressive"])
def test_aioice_connection_completes_against_the_lite_agent(remote_is_lite: bool) -> None:
    asyncio.run(run_aioice_against_lite_agent(remote_is_lite=remote_is_lite))
