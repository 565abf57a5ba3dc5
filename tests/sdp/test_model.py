"""The lossless model: what the parser accepts and refuses, the helpers, and the round trip
``parse_sdp(d.to_bytes()) == d`` on generated descriptions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtcgw.sdp import (
    Attribute,
    Connection,
    Entry,
    Line,
    LocalSdpError,
    MediaSection,
    Origin,
    SdpError,
    SdpParseError,
    SessionDescription,
    parse_sdp,
)
from tests.sdp.helpers import MINIMAL, normalized, sdp


def test_minimal_description_parses_and_writes_back() -> None:
    desc = parse_sdp(MINIMAL)
    assert desc.entries == (
        Line("v", "0"),
        Line("o", "- 1 1 IN IP4 192.0.2.1"),
        Line("s", "-"),
        Line("t", "0 0"),
    )
    assert desc.media == ()
    assert desc.to_bytes() == MINIMAL.encode()
    assert desc.origin == Origin("-", "1", "1", "IN", "IP4", "192.0.2.1")


def test_bare_lf_trailing_whitespace_and_trailing_empty_lines_are_normalized() -> None:
    text = "v=0\no=- 1 1 IN IP4 192.0.2.1 \ns=- \t\nt=0 0\nm=audio 4000 RTP/AVP 0  \n\n  \n"
    desc = parse_sdp(text.encode())
    assert desc == parse_sdp(MINIMAL + "m=audio 4000 RTP/AVP 0\r\n")
    assert desc.to_bytes() == normalized(text.encode())


def test_missing_final_line_ending_is_accepted() -> None:
    assert parse_sdp(MINIMAL.rstrip("\r\n")) == parse_sdp(MINIMAL)


def test_bytes_and_str_parse_alike() -> None:
    text = sdp("m=audio 4000 RTP/AVP 0", "a=tool:caf\u00e9")
    assert parse_sdp(text) == parse_sdp(text.encode("utf-8"))


def test_media_section_fields_and_entries_in_order() -> None:
    desc = parse_sdp(
        sdp(
            "a=sendonly",
            "m=video 49170/2 RTP/AVP 31 32",
            "i=the camera",
            "c=IN IP4 224.2.1.1/127",
            "b=AS:512",
            "k=prompt",
            "a=rtpmap:31 H261/90000",
            "a=recvonly",
            "m=audio 0 RTP/AVP 0",
        )
    )
    video, audio = desc.media
    assert (video.media, video.port, video.port_count, video.proto, video.formats) == (
        "video",
        49170,
        2,
        "RTP/AVP",
        ("31", "32"),
    )
    assert video.entries == (
        Line("i", "the camera"),
        Line("c", "IN IP4 224.2.1.1/127"),
        Line("b", "AS:512"),
        Line("k", "prompt"),
        Attribute("rtpmap", "31 H261/90000"),
        Attribute("recvonly"),
    )
    assert video.connection == Connection("IN", "IP4", "224.2.1.1")
    assert video.m_value == "video 49170/2 RTP/AVP 31 32"
    assert not video.rejected
    assert audio.rejected
    assert audio.entries == ()
    # The session-level direction stays at session level: nothing is copied between levels.
    assert desc.attributes == (Attribute("sendonly"),)
    assert not video.has("sendonly")


def test_unknown_lines_and_attributes_are_kept_where_they_appeared() -> None:
    text = sdp(
        "x=something new",
        "a=x-unknown:1 2 3",
        "m=audio 4000 RTP/AVP 0",
        "y=another",
        "a=x-unknown",
    )
    desc = parse_sdp(text)
    assert Line("x", "something new") in desc.entries
    assert desc.values("x-unknown") == ("1 2 3",)
    assert desc.media[0].entries == (Line("y", "another"), Attribute("x-unknown"))
    assert desc.to_bytes() == text.encode()


def test_attribute_helpers() -> None:
    section = parse_sdp(
        sdp(
            "m=audio 4000 RTP/AVP 0",
            "a=mid:audio0",
            "a=rtcp-mux",
            "a=empty:",
            "a=ssrc:1 cname:a",
            "a=ssrc:1 msid:s t",
            "a=msid-semantic: WMS *",
        )
    ).media[0]
    assert section.mid == "audio0"
    assert section.has("rtcp-mux")
    assert section.value("rtcp-mux") == ""
    assert section.value("empty") == ""
    assert section.attributes[2] == Attribute("empty", "")
    assert str(section.attributes[2]) == "empty:"
    assert section.value("nothing") is None
    assert not section.has("nothing")
    assert section.values("ssrc") == ("1 cname:a", "1 msid:s t")
    # The text after the first colon is the value, leading space included (Chrome's form).
    assert section.value("msid-semantic") == " WMS *"
    assert section.connection is None


def test_session_helpers() -> None:
    desc = parse_sdp(sdp("c=IN IP6 2001:db8::1", "a=ice-lite", "a=group:BUNDLE 0 1"))
    assert desc.connection == Connection("IN", "IP6", "2001:db8::1")
    assert desc.has("ice-lite")
    assert desc.value("group") == "BUNDLE 0 1"
    assert desc.values("group") == ("BUNDLE 0 1",)


def test_m_line_spacing_and_leading_zeros_are_normalized() -> None:
    desc = parse_sdp(sdp("m=audio  04000 RTP/AVP\t0 8"))
    assert desc.media[0].port == 4000
    assert desc.lines()[-1] == "m=audio 4000 RTP/AVP 0 8"


PARSE_ERRORS = [
    ("", 1, "empty"),
    ("v=1\r\n", 1, "v=0"),
    ("o=- 1 1 IN IP4 192.0.2.1\r\nv=0\r\ns=-\r\n", 1, "v=0"),
    ("v=0\r\ns=-\r\nt=0 0\r\n", 2, "no o="),
    ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nt=0 0\r\n", 3, "no s="),
    (MINIMAL + "o=- 2 2 IN IP4 192.0.2.1\r\n", 5, "repeats the one on line 2"),
    (MINIMAL + "v=0\r\n", 5, "repeats"),
    ("v=0\r\no=- 1 1 IN IP4\r\ns=-\r\n", 2, "o= needs 6 fields"),
    (MINIMAL + "c=IN IP4\r\n", 5, "c= needs 3 fields"),
    (MINIMAL + "A=uppercase\r\n", 5, "lowercase letter"),
    (MINIMAL + "ab=two letters\r\n", 5, "lowercase letter"),
    (MINIMAL + "no equals sign\r\n", 5, "lowercase letter"),
    (MINIMAL + "a\r\n", 5, "lowercase letter"),
    (MINIMAL + "\r\nb=AS:64\r\n", 5, "empty line"),
    (MINIMAL + "a=\r\n", 5, "no name"),
    (MINIMAL + "a=:value\r\n", 5, "no name"),
    (MINIMAL + "m=audio x RTP/AVP 0\r\n", 5, "port 'x' is not a number"),
    (MINIMAL + "m=audio 70000 RTP/AVP 0\r\n", 5, "port '70000'"),
    (MINIMAL + "m=audio -1 RTP/AVP 0\r\n", 5, "port '-1'"),
    (MINIMAL + "m=audio +1 RTP/AVP 0\r\n", 5, "port '+1'"),
    (MINIMAL + "m=audio 1_0 RTP/AVP 0\r\n", 5, "port '1_0'"),
    (MINIMAL + "m=audio \u0664\u0660 RTP/AVP 0\r\n", 5, "is not a number"),
    (MINIMAL + "m=audio 4000/0 RTP/AVP 0\r\n", 5, "port count '0'"),
    (MINIMAL + "m=audio 4000/ RTP/AVP 0\r\n", 5, "port count ''"),
    (MINIMAL + "m=audio 4000 RTP/AVP\r\n", 5, "at least one format"),
    (MINIMAL + "m=\r\n", 5, "at least one format"),
    (MINIMAL + "m=audio 4000 RTP/AVP 0\r\ns=again\r\n", 6, "not allowed in a media section"),
    (MINIMAL + "m=audio 4000 RTP/AVP 0\r\no=- 1 1 IN IP4 1.2.3.4\r\n", 6, "media section"),
    (MINIMAL + "a=bad\x00nul\r\n", 5, "NUL"),
    (MINIMAL + "a=bad\rcr\r\n", 5, "carriage return"),
]


@pytest.mark.parametrize(("text", "line_no", "reason"), PARSE_ERRORS)
def test_malformed_descriptions_raise_parse_errors(text: str, line_no: int, reason: str) -> None:
    with pytest.raises(SdpParseError) as info:
        parse_sdp(text)
    assert info.value.line_no == line_no
    assert reason in info.value.reason
    assert info.value.status_hint == 488
    assert isinstance(info.value, SdpError)


def test_parse_error_message_names_line_and_text() -> None:
    with pytest.raises(SdpParseError) as info:
        parse_sdp(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nc=IN IP4 192.0.2.1\r\n"
            "b=AS:64\r\nm=audio x RTP/AVP 0\r\n"
        )
    assert str(info.value).startswith("SDP line 7 'm=audio x RTP/AVP 0': port 'x' is not a number")
    assert info.value.line == "m=audio x RTP/AVP 0"


def test_bytes_that_are_not_utf8_name_their_line() -> None:
    data = MINIMAL.encode() + b"a=tool:\xff\xfe\r\n"
    with pytest.raises(SdpParseError) as info:
        parse_sdp(data)
    assert info.value.line_no == 5
    assert "UTF-8" in info.value.reason


def test_long_lines_are_shortened_in_messages() -> None:
    with pytest.raises(SdpParseError) as info:
        parse_sdp(MINIMAL + "m=audio " + "9" * 500 + " RTP/AVP 0\r\n")
    assert len(str(info.value)) < 300


@pytest.mark.parametrize(
    "build",
    [
        lambda: Line("a", "rtcp-mux"),
        lambda: Line("m", "audio 0 RTP/AVP 0"),
        lambda: Line("C", "IN IP4 1.2.3.4"),
        lambda: Line("c", "garbage"),
        lambda: Line("o", "- 1 1"),
        lambda: Line("v", "1"),
        lambda: Line("i", "two\r\nlines"),
        lambda: Line("i", "trailing "),
        lambda: Attribute(""),
        lambda: Attribute("a:b"),
        lambda: Attribute("flag "),
        lambda: Attribute("name", "value\n"),
        lambda: Attribute("name", "value\t"),
        lambda: MediaSection("audio", 70000, None, "RTP/AVP", ("0",)),
        lambda: MediaSection("audio", 4000, 0, "RTP/AVP", ("0",)),
        lambda: MediaSection("audio", 4000, None, "RTP/AVP", ()),
        lambda: MediaSection("audio", 4000, None, "RTP/AVP", ("0 8",)),
        lambda: MediaSection("", 4000, None, "RTP/AVP", ("0",)),
        lambda: MediaSection("audio", 4000, None, "RTP/AVP", ("0",), (Line("s", "-"),)),
        lambda: SessionDescription((Line("s", "-"),)),
        lambda: SessionDescription((Line("v", "0"), Line("s", "-"))),
        lambda: SessionDescription(
            (Line("v", "0"), Line("o", "- 1 1 IN IP4 h"), Line("s", "-"), Line("s", "-"))
        ),
    ],
)
def test_values_that_would_not_read_back_are_refused(build: object) -> None:
    assert callable(build)
    with pytest.raises(LocalSdpError):
        build()


# --- Hypothesis: generated descriptions survive writing and reading ------------------------

_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00"),
    max_size=24,
).map(str.rstrip)
_TOKEN = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Zs", "Cc"], exclude_characters=":"),
    min_size=1,
    max_size=12,
).filter(lambda t: t.split() == [t])
_NAME = st.one_of(
    st.sampled_from(["rtpmap", "fmtp", "mid", "rtcp-mux", "ssrc", "candidate", "x-new"]),
    _TEXT.filter(lambda n: bool(n) and ":" not in n),
)
_ATTRIBUTE = st.builds(Attribute, _NAME, st.one_of(st.none(), _TEXT))
_ADDRESS = st.one_of(st.ip_addresses().map(str), _TOKEN.filter(lambda t: not t.startswith("/")))
_C_LINE = st.builds(
    lambda kind, addr: Line("c", f"IN {kind} {addr}"), st.sampled_from(["IP4", "IP6"]), _ADDRESS
)
_PLAIN_LINE = st.builds(Line, st.sampled_from(list("bceikprtuz")).filter(lambda t: t != "c"), _TEXT)
_ENTRY: st.SearchStrategy[Entry] = st.one_of(_ATTRIBUTE, _PLAIN_LINE, _C_LINE)
_SECTION = st.builds(
    MediaSection,
    media=_TOKEN,
    port=st.integers(0, 65535),
    port_count=st.one_of(st.none(), st.integers(1, 65535)),
    proto=_TOKEN,
    formats=st.lists(_TOKEN, min_size=1, max_size=5).map(tuple),
    entries=st.lists(_ENTRY, max_size=6).map(tuple),
)


@st.composite
def descriptions(draw: st.DrawFn) -> SessionDescription:
    origin = " ".join(draw(st.lists(_TOKEN, min_size=6, max_size=6)))
    before = draw(st.lists(_ENTRY, max_size=4))
    after = draw(st.lists(_ENTRY, max_size=4))
    entries = (Line("v", "0"), Line("o", origin), *before, Line("s", draw(_TEXT)), *after)
    return SessionDescription(entries, tuple(draw(st.lists(_SECTION, max_size=4))))


@given(descriptions())
def test_generated_descriptions_round_trip(desc: SessionDescription) -> None:
    data = desc.to_bytes()
    assert data.endswith(b"\r\n")
    again = parse_sdp(data)
    assert again == desc
    assert again.to_bytes() == data
    assert parse_sdp(data.replace(b"\r\n", b"\n")) == desc
