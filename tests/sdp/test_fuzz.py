"""The h11 fuzz invariant for SDP: whatever the bytes, parsing returns a description or raises
SdpParseError, nothing else; and whatever parses also writes back and reads back equal.

Typed views share the rule: on any parsed description they return or raise SdpParseError.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtcgw.sdp import (
    MediaSection,
    SdpParseError,
    SessionDescription,
    bundle_groups,
    codecs_of,
    connection_of,
    direction_of,
    fingerprints_of,
    ice_credentials_of,
    parse_sdp,
    rtcp_of,
    setup_of,
    strongest_fingerprint,
)
from tests.sdp.helpers import CORPUS_FILES

CORPUS_DATA = [p.read_bytes() for p in CORPUS_FILES]


def check(data: bytes) -> None:
    try:
        desc = parse_sdp(data)
    except SdpParseError as exc:
        assert exc.line_no >= 1
        assert str(exc).startswith(f"SDP line {exc.line_no} ")
        return
    again = parse_sdp(desc.to_bytes())
    assert again == desc
    read_every_view(desc)


SECTION_VIEWS: list[Callable[[MediaSection, SessionDescription], object]] = [
    lambda s, d: codecs_of(s),
    direction_of,
    setup_of,
    connection_of,
    lambda s, d: strongest_fingerprint(fingerprints_of(s, d)),
    ice_credentials_of,
    lambda s, d: rtcp_of(s),
]


def read_every_view(desc: SessionDescription) -> None:
    assert desc.origin.to_sdp()
    desc.connection  # noqa: B018 - checked when parsed: reading it must not raise
    try:
        bundle_groups(desc)
    except SdpParseError as exc:
        assert exc.line_no == 0
    for section in desc.media:
        for view in SECTION_VIEWS:
            try:
                view(section, desc)
            except SdpParseError as exc:
                assert exc.line_no == 0


@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    check(data)


@given(st.text(alphabet="vosctmab=:0123456789 /\r\n\tRTP/AVPIN4", max_size=300))
def test_random_sdp_like_text(text: str) -> None:
    check(("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\n" + text).encode())


@st.composite
def mutated_corpus(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS_DATA)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "delete", "insert", "duplicate-line", "cut"]))
        pos = draw(st.integers(0, len(data)))
        if kind == "flip" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "insert":
            data[pos:pos] = draw(
                st.binary(min_size=1, max_size=8)
                | st.sampled_from(
                    [b"\r\n", b"\n", b" ", b"=", b":", b"/", b"\x00", b"\xff", b"m=", b"a=rtpmap:"]
                )
            )
        elif kind == "duplicate-line":
            start = data.rfind(b"\n", 0, pos) + 1
            end = data.find(b"\n", pos)
            if end != -1:
                data[end + 1 : end + 1] = data[start : end + 1]
        else:
            del data[pos:]
    return bytes(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_corpus())
def test_mutated_corpus(data: bytes) -> None:
    check(data)


def test_whole_corpus_and_every_prefix_of_one_file() -> None:
    for data in CORPUS_DATA:
        check(data)
    sample = CORPUS_DATA[0]
    for cut in range(0, len(sample), 7):
        check(sample[:cut])
