"""The dispatcher: Call-ID and top Via branch scans, and the worker choice."""

from __future__ import annotations

import random
import zlib
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtcgw.sip.ids import new_branch, new_call_id, new_tag
from rtcgw.supervisor.dispatch import (
    Dispatcher,
    Route,
    RouteReason,
    find_call_id,
    find_top_via_branch,
)

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SDP = (
    b"v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\ni=Call-ID: not-me\r\n"
    b"t=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"
)


def request(
    call_id: str = "a84b4c76e66710@pc33.atlanta.com",
    *,
    method: str = "INVITE",
    branch: str = "z9hG4bK776asdhds",
    body: bytes = b"",
) -> bytes:
    """A JsSIP-like request over WSS."""
    return (
        f"{method} sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch={branch}\r\n"
        "Max-Forwards: 69\r\n"
        "To: <sip:bob@example.com>\r\n"
        'From: "Alice" <sip:alice@example.com>;tag=1928301774\r\n'
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 {method}\r\n"
        "Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws;ob>\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def response(call_id: str = "a84b4c76e66710", *, branch: str = "z9hG4bKnashds8") -> bytes:
    """A PBX's 180 to a request that crossed one proxy (two Vias)."""
    return (
        "SIP/2.0 180 Ringing\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.4:5060;branch={branch};received=192.0.2.4\r\n"
        "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-r1-000000000000000000000000\r\n"
        "To: <sip:bob@example.com>;tag=a6c85cf\r\n"
        "From: <sip:alice@example.com>;tag=1928301774\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 314159 INVITE\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


# -- find_call_id and find_top_via_branch ------------------------------------------------

CASES = [
    pytest.param(request(), b"a84b4c76e66710@pc33.atlanta.com", b"z9hG4bK776asdhds", id="invite"),
    pytest.param(response(), b"a84b4c76e66710", b"z9hG4bKnashds8", id="response-two-vias"),
    pytest.param(
        request(body=SDP), b"a84b4c76e66710@pc33.atlanta.com", b"z9hG4bK776asdhds", id="body"
    ),
    pytest.param(
        b"BYE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bKc\r\ni: compact-1\r\n\r\n",
        b"compact-1",
        b"z9hG4bKc",
        id="compact",
    ),
    pytest.param(
        b"ACK sip:a@b SIP/2.0\r\nVIA: SIP/2.0/TCP h;BRANCH=z9hG4bKUP\r\nCALL-ID: UpPeR\r\n\r\n",
        b"UpPeR",
        b"z9hG4bKUP",
        id="upper-case",
    ),
    pytest.param(
        b"ACK sip:a@b SIP/2.0\r\nvIa: SIP/2.0/TCP h;bRaNcH=z9hG4bKx\r\ncAlL-iD: mixed\r\n\r\n",
        b"mixed",
        b"z9hG4bKx",
        id="odd-case",
    ),
    pytest.param(
        b"OPTIONS sip:a@b SIP/2.0\r\nVia\t:\tSIP/2.0/UDP h ; branch = z9hG4bKt \t\r\n"
        b"Call-ID\t:\t tabbed \t\r\n\r\n",
        b"tabbed",
        b"z9hG4bKt",
        id="tabs-and-blanks",
    ),
    pytest.param(
        b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID:\r\n  folded@host\r\n"
        b"Via: SIP/2.0/UDP h\r\n ;branch=z9hG4bKf\r\n\r\n",
        b"folded@host",
        b"z9hG4bKf",
        id="folded",
    ),
    pytest.param(
        b"OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bKlf\nCall-ID: lf-only\n\n",
        b"lf-only",
        b"z9hG4bKlf",
        id="lf-line-ends",
    ),
    pytest.param(
        b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nCall-ID: after-crlf\r\n\r\n",
        b"after-crlf",
        None,
        id="leading-crlf",
    ),
    pytest.param(
        b"INVITE sip:[2001:db8::9]:5060 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK6;rport\r\n"
        b"Call-ID: 1234@[2001:db8::1]\r\n\r\n",
        b"1234@[2001:db8::1]",
        b"z9hG4bK6",
        id="ipv6",
    ),
    pytest.param(
        b"INVITE sip:a@b SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP [2001:db8::1];branch=z9hG4bKone, SIP/2.0/UDP h2;branch=z9hG4bKtwo\r\n"
        b"Via: SIP/2.0/UDP h3;branch=z9hG4bKthree\r\ni: x\r\n\r\n",
        b"x",
        b"z9hG4bKone",
        id="several-vias-on-a-line",
    ),
    pytest.param(
        b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h1;rport, SIP/2.0/UDP h2;branch=z9hG4bKb\r\n"
        b"Via: SIP/2.0/UDP h3;branch=z9hG4bKc\r\nCall-ID: x\r\n\r\n",
        b"x",
        None,
        id="top-via-without-branch",
    ),
    pytest.param(
        b'INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;x="a,b;branch=no";branch=z9hG4bKq\r\n'
        b"Call-ID: x\r\n\r\n",
        b"x",
        b"z9hG4bKq",
        id="quoted-via-param",
    ),
    pytest.param(
        b"INVITE sip:a@b SIP/2.0\r\nX-Call-ID: fake\r\nIn-Reply-To: 70710@saturn.example\r\n"
        b"Identity: abc\r\nXVia: SIP/2.0/UDP h;branch=nope\r\nCall-ID: real\r\n\r\n",
        b"real",
        None,
        id="lookalike-names",
    ),
    pytest.param(
        b"INVITE sip:a@b SIP/2.0\r\nCall-ID: first\r\nCall-ID: second\r\n\r\n",
        b"first",
        None,
        id="two-call-ids",
    ),
    pytest.param(
        b"INVITE sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\nCall-ID: in-body\r\n",
        None,
        None,
        id="call-id-in-body",
    ),
    pytest.param(b"INVITE sip:a@b SIP/2.0\r\nCall-ID:   \r\n\r\n", None, None, id="empty-value"),
    pytest.param(b"INVITE sip:a@b SIP/2.0\r\nCall-ID: cut", b"cut", None, id="no-blank-line"),
    pytest.param(b"Call-ID: x\r\n\r\n", None, None, id="header-as-start-line"),
    pytest.param(b"INVITE sip:a@b SIP/2.0\r\n\r\n", None, None, id="no-headers"),
    pytest.param(b"", None, None, id="empty"),
    pytest.param(b"\x00\xff\r\n\xfe\r\n", None, None, id="garbage"),
    pytest.param(
        b"MESSAGE sip:a@b SIP/2.0\r\nCall-ID: \xc3\xa9t\xc3\xa9\r\n\r\n",
        b"\xc3\xa9t\xc3\xa9",
        None,
        id="non-ascii",
    ),
]


@pytest.mark.parametrize(("data", "call_id", "branch"), CASES)
def test_scans(data: bytes, call_id: bytes | None, branch: bytes | None) -> None:
    assert find_call_id(data) == call_id
    assert find_top_via_branch(data) == branch


# -- Dispatcher --------------------------------------------------------------------------


def crc(call_id: str, n: int) -> int:
    return zlib.crc32(call_id.encode()) % n


SHARDED = new_call_id(shard=2)
SHARDED_HOST = new_call_id("gw.example.net", shard=3)
FOREIGN = "a84b4c76e66710@pc33.atlanta.com"
OUR_BRANCH = new_branch(shard=1)


@pytest.mark.parametrize(
    ("data", "worker_count", "expected"),
    [
        pytest.param(request(FOREIGN), 4, Route(crc(FOREIGN, 4), RouteReason.CALL_ID_HASH, None)),
        pytest.param(request(SHARDED), 4, Route(2, RouteReason.CALL_ID_SHARD, None)),
        pytest.param(request(SHARDED_HOST), 4, Route(3, RouteReason.CALL_ID_SHARD, None)),
        pytest.param(response(SHARDED), 4, Route(2, RouteReason.CALL_ID_SHARD, None)),
        # A shard tag from a larger worker count falls back to the hash.
        pytest.param(request(SHARDED), 2, Route(crc(SHARDED, 2), RouteReason.CALL_ID_HASH, None)),
        # A response to a request worker 1 sent on a leg it did not create.
        pytest.param(
            response(FOREIGN, branch=OUR_BRANCH), 4, Route(1, RouteReason.VIA_BRANCH_SHARD, None)
        ),
        # The Call-ID's tag wins over the branch's.
        pytest.param(
            response(SHARDED, branch=OUR_BRANCH), 4, Route(2, RouteReason.CALL_ID_SHARD, None)
        ),
        # A request's top Via is the sender's: its branch does not route.
        pytest.param(
            request(FOREIGN, branch=OUR_BRANCH),
            4,
            Route(crc(FOREIGN, 4), RouteReason.CALL_ID_HASH, None),
        ),
        # Only the top Via counts (the second one of response() is sharded, r1).
        pytest.param(response(FOREIGN), 4, Route(crc(FOREIGN, 4), RouteReason.CALL_ID_HASH, None)),
        pytest.param(
            response(FOREIGN, branch=new_branch(shard=5)),
            4,
            Route(crc(FOREIGN, 4), RouteReason.CALL_ID_HASH, None),
        ),
        pytest.param(request(FOREIGN), 1, Route(0, RouteReason.CALL_ID_HASH, None)),
        pytest.param(
            b"OPTIONS sip:a@b SIP/2.0\r\n\r\n", 4, Route(None, RouteReason.NO_CALL_ID, None)
        ),
        pytest.param(b"\x00garbage", 4, Route(None, RouteReason.NO_CALL_ID, None)),
    ],
)
def test_route(data: bytes, worker_count: int, expected: Route) -> None:
    route = Dispatcher(worker_count).route(data)
    assert (route.worker, route.reason) == (expected.worker, expected.reason)
    assert route.call_id == find_call_id(data)
    assert Dispatcher(worker_count).worker_for(data) == expected.worker


def test_status_line_is_recognised_case_insensitively_and_after_crlf() -> None:
    data = b"\r\n" + response(FOREIGN, branch=OUR_BRANCH).replace(b"SIP/2.0 180", b"sip/2.0 180")
    assert Dispatcher(4).route(data).reason is RouteReason.VIA_BRANCH_SHARD


def test_a_call_stays_on_one_worker() -> None:
    """INVITE, CANCEL, ACK, BYE and responses of one call: the same worker."""
    dispatcher = Dispatcher(7)
    for call_id in (FOREIGN, SHARDED):
        messages = [request(call_id, method=m) for m in ("INVITE", "CANCEL", "ACK", "BYE")]
        messages += [response(call_id), response(call_id, branch=new_branch())]
        assert len({dispatcher.worker_for(m) for m in messages}) == 1


def test_worker_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Dispatcher(0)


def test_huge_shard_number_does_not_raise() -> None:
    # ids.shard_of would call int() on the digits; Python refuses above 4300 digits.
    call_id = "r" + "7" * 5000 + "-" + "0" * 24
    route = Dispatcher(4).route(request(call_id))
    assert route.reason is RouteReason.CALL_ID_HASH
    assert route.worker == crc(call_id, 4)
    huge_branch = "z9hG4bK-r" + "1" * 5000 + "-" + "0" * 24
    assert Dispatcher(4).route(response(FOREIGN, branch=huge_branch)).worker == crc(FOREIGN, 4)


# -- properties --------------------------------------------------------------------------


@FAST
@given(data=st.binary(max_size=400), worker_count=st.integers(1, 16))
def test_random_bytes_never_raise(data: bytes, worker_count: int) -> None:
    find_call_id(data)
    find_top_via_branch(data)
    worker = Dispatcher(worker_count).worker_for(data)
    assert worker is None or 0 <= worker < worker_count


#: Fragments that stress the scanners: names, separators, line ends, quotes, shard tags.
header_line_bits = st.sampled_from(
    [
        *[b"Call-ID", b"i", b"Via", b"v", b"branch=", b"SIP/2.0", b"z9hG4bK-r1-", b"r0-"],
        *[b":", b" ", b"\t", b"\r\n", b"\n", b"\r", b'"', b"\\", b",", b";", b"@"],
        *[b"\x00", b"\xff", b"x"],
    ]
)


@FAST
@given(
    parts=st.lists(header_line_bits, max_size=60),
    base=st.sampled_from([request(), response(), request(body=SDP)]),
    cut=st.integers(0, 400),
)
def test_mangled_messages_never_raise(parts: list[bytes], base: bytes, cut: int) -> None:
    data = base[:cut] + b"".join(parts) + base[cut:]
    find_call_id(data)
    find_top_via_branch(data)
    worker = Dispatcher(3).worker_for(data)
    assert worker is None or 0 <= worker < 3


@FAST
@given(
    worker_count=st.integers(1, 32),
    data=st.data(),
    domain=st.sampled_from([None, "gw.example.net", "[2001:db8::1]"]),
    method=st.sampled_from(["INVITE", "ACK", "CANCEL", "BYE", "re-200"]),
)
def test_sharded_call_id_routes_to_its_worker(
    worker_count: int, data: st.DataObject, domain: str | None, method: str
) -> None:
    shard = data.draw(st.integers(0, worker_count - 1))
    call_id = new_call_id(domain, shard=shard)
    if method == "re-200":
        message = response(call_id, branch=new_branch(shard=data.draw(st.integers(0, 40))))
    else:
        message = request(call_id, method=method, branch=new_branch())
    assert Dispatcher(worker_count).worker_for(message) == shard


@FAST
@given(worker_count=st.integers(1, 32), data=st.data())
def test_sharded_branch_routes_responses_to_its_worker(
    worker_count: int, data: st.DataObject
) -> None:
    shard = data.draw(st.integers(0, worker_count - 1))
    foreign = new_tag() + "@pbx.example.com"  # a Call-ID that is not ours
    dispatcher = Dispatcher(worker_count)
    assert dispatcher.worker_for(response(foreign, branch=new_branch(shard=shard))) == shard
    assert dispatcher.worker_for(request(foreign, branch=new_branch(shard=shard))) == crc(
        foreign, worker_count
    )


def test_random_call_ids_spread_evenly() -> None:
    rng = random.Random(20240611)
    call_ids = [
        f"{rng.getrandbits(96):024x}@{rng.choice(['a.example', 'b.example'])}" for _ in range(4000)
    ]
    dispatcher = Dispatcher(4)
    counts = Counter(dispatcher.worker_for(request(call_id)) for call_id in call_ids)
    assert set(counts) == {0, 1, 2, 3}
    for worker, count in counts.items():
        assert 0.15 * 4000 <= count <= 0.35 * 4000, f"worker {worker} got {count} of 4000"
