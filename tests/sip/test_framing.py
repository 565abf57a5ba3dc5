"""StreamFramer: cutting messages out of a TCP/TLS stream, keep-alives, limits."""

from __future__ import annotations

import pytest

from rtcgw.sip import PONG, KeepAlivePing, LocalProtocolError, SipParseError, StreamFramer
from rtcgw.sip.framing import DEFAULT_MAX_MESSAGE_BYTES


def message(body: bytes = b"", *, cseq: int = 1, length: bytes | None = None) -> bytes:
    """An OPTIONS request with ``body``; ``length`` overrides the Content-Length value."""
    n = str(cseq).encode()
    cl = str(len(body)).encode() if length is None else length
    return b"".join(
        [
            b"OPTIONS sip:b@example.com SIP/2.0\r\n",
            b"Via: SIP/2.0/TCP h;branch=z9hG4bK" + n + b"\r\n",
            b"To: <sip:b@example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\nCall-ID: c\r\n",
            b"CSeq: " + n + b" OPTIONS\r\nContent-Length: " + cl + b"\r\n\r\n",
            body,
        ]
    )


Event = bytes | KeepAlivePing


def drain(framer: StreamFramer) -> list[Event]:
    events: list[Event] = []
    while (event := framer.next_event()) is not None:
        events.append(event)
    return events


def feed_bytewise(data: bytes, framer: StreamFramer | None = None) -> list[Event]:
    framer = framer or StreamFramer()
    events: list[Event] = []
    for i in range(len(data)):
        framer.feed(data[i : i + 1])
        events.extend(drain(framer))
    return events


def test_one_message() -> None:
    framer = StreamFramer()
    framer.feed(message(b"hello"))
    assert framer.next_event() == message(b"hello")
    assert framer.next_event() is None
    assert framer.buffered_bytes == 0


@pytest.mark.parametrize("body", [b"", b"v=0\r\n", b"\r\n\r\n", b"binary\x00\r\n\r\n\xff"])
def test_split_at_every_byte_boundary(body: bytes) -> None:
    data = message(body)
    for cut in range(len(data) + 1):
        framer = StreamFramer()
        framer.feed(data[:cut])
        first = drain(framer)
        framer.feed(data[cut:])
        assert first + drain(framer) == [data], cut


def test_byte_by_byte() -> None:
    data = message(b"x" * 10)
    assert feed_bytewise(data + data) == [data, data]


def test_several_messages_in_one_chunk() -> None:
    chunk = message(b"a", cseq=1) + message(b"", cseq=2) + message(b"ccc", cseq=3)
    framer = StreamFramer()
    framer.feed(chunk)
    assert drain(framer) == [message(b"a", cseq=1), message(b"", cseq=2), message(b"ccc", cseq=3)]


def test_message_completed_by_a_later_chunk_with_the_next_one() -> None:
    first, second = message(b"0123456789"), message(b"ab", cseq=2)
    framer = StreamFramer()
    framer.feed(first[:-3])
    assert framer.next_event() is None
    framer.feed(first[-3:] + second[:20])
    assert drain(framer) == [first]
    framer.feed(second[20:])
    assert drain(framer) == [second]


# -- keep-alives (RFC 5626 section 4.4.1) -----------------------------------------------


def test_ping_between_messages() -> None:
    framer = StreamFramer()
    framer.feed(message() + b"\r\n\r\n" + message(cseq=2))
    assert drain(framer) == [message(), KeepAlivePing.PING, message(cseq=2)]
    assert PONG == b"\r\n"


def test_ping_alone_and_split() -> None:
    assert feed_bytewise(b"\r\n\r\n\r\n\r\n") == [KeepAlivePing.PING, KeepAlivePing.PING]
    framer = StreamFramer()
    framer.feed(b"\r\n")
    assert framer.next_event() is None  # could be the first half of a ping
    framer.feed(b"\r")
    assert framer.next_event() is None
    framer.feed(b"\n")
    assert framer.next_event() is KeepAlivePing.PING


def test_pong_and_stray_line_ends_are_skipped() -> None:
    framer = StreamFramer()
    framer.feed(b"\r\n" + message() + b"\r\n" + b"\n" + message(cseq=2))
    assert drain(framer) == [message(), message(cseq=2)]


def test_pong_waits_until_it_cannot_be_a_ping() -> None:
    framer = StreamFramer()
    framer.feed(b"\r\n")
    assert framer.next_event() is None
    framer.feed(b"OPTIONS")
    assert framer.next_event() is None
    assert framer.buffered_bytes == len(b"OPTIONS")


def test_stray_cr_between_messages_is_an_error() -> None:
    framer = StreamFramer()
    framer.feed(b"\rX")
    with pytest.raises(SipParseError, match="CR not followed by LF"):
        framer.next_event()


# -- Content-Length ---------------------------------------------------------------------


def test_content_length_is_mandatory_on_streams() -> None:
    data = message().replace(b"Content-Length: 0\r\n", b"")
    framer = StreamFramer()
    framer.feed(data)
    with pytest.raises(SipParseError) as info:
        framer.next_event()
    assert info.value.where == "Content-Length"
    assert "18.3" in info.value.reason


@pytest.mark.parametrize("value", [b"-1", b"five", b"1 2", b"", b"\xd9\xa1"])
def test_bad_content_length(value: bytes) -> None:
    framer = StreamFramer()
    framer.feed(message(length=value))
    with pytest.raises(SipParseError) as info:
        framer.next_event()
    assert info.value.where == "Content-Length"


def test_conflicting_content_lengths() -> None:
    framer = StreamFramer()
    framer.feed(message(b"ab").replace(b"Call-ID", b"l: 3\r\nCall-ID"))
    with pytest.raises(SipParseError, match="two different values"):
        framer.next_event()


def test_compact_folded_and_padded_content_length() -> None:
    data = message(b"abc").replace(b"Content-Length: 3", b"L  :\r\n  0003")
    framer = StreamFramer()
    framer.feed(data + message(cseq=2))
    assert drain(framer) == [data, message(cseq=2)]


def test_bare_lf_header_section() -> None:
    data = message(b"xy").replace(b"\r\n", b"\n")[: -len(b"xy")] + b"xy"
    assert feed_bytewise(data) == [data]


def test_larger_content_length_waits_for_the_body() -> None:
    # RFC 4475 section 3.1.2.2: on a stream "there's not much the receiving party could do
    # but wait for more data".
    framer = StreamFramer()
    framer.feed(message(b"short", length=b"9999"))
    assert framer.next_event() is None


# -- limits -----------------------------------------------------------------------------


def test_oversize_header_section_without_end() -> None:
    framer = StreamFramer(max_message_bytes=100)
    framer.feed(b"OPTIONS sip:x SIP/2.0\r\nX-Pad: " + b"a" * 200)
    with pytest.raises(SipParseError) as info:
        framer.next_event()
    assert info.value.status_hint == 513


def test_oversize_body_is_refused_before_it_arrives() -> None:
    framer = StreamFramer(max_message_bytes=1000)
    framer.feed(message(length=b"5000"))
    with pytest.raises(SipParseError) as info:
        framer.next_event()
    assert info.value.status_hint == 513
    framer2 = StreamFramer(max_message_bytes=1000)
    framer2.feed(message(length=b"9" * 400))
    with pytest.raises(SipParseError):
        framer2.next_event()


def test_message_exactly_at_the_limit() -> None:
    data = message(b"z" * 10)
    framer = StreamFramer(max_message_bytes=len(data))
    framer.feed(data)
    assert framer.next_event() == data
    small = StreamFramer(max_message_bytes=len(data) - 1)
    small.feed(data)
    with pytest.raises(SipParseError):
        small.next_event()


def test_default_limit() -> None:
    assert StreamFramer().max_message_bytes == DEFAULT_MAX_MESSAGE_BYTES == 65536
    with pytest.raises(LocalProtocolError):
        StreamFramer(max_message_bytes=0)


def test_errors_are_sticky() -> None:
    framer = StreamFramer()
    framer.feed(message(length=b"x"))
    with pytest.raises(SipParseError) as first:
        framer.next_event()
    framer.feed(message())
    with pytest.raises(SipParseError) as again:
        framer.next_event()
    assert again.value is first.value


def test_large_message_fed_bytewise_stays_fast() -> None:
    # The search for the end of the header section resumes where it stopped.
    data = message(b"b" * 2000).replace(b"Call-ID", b"X-Pad: " + b"p" * 20000 + b"\r\nCall-ID")
    assert feed_bytewise(data) == [data]


def test_complete_but_oversize_header_section() -> None:
    data = message().replace(b"Call-ID", b"X-Pad: " + b"p" * 300 + b"\r\nCall-ID")
    framer = StreamFramer(max_message_bytes=200)
    framer.feed(data)
    with pytest.raises(SipParseError) as info:
        framer.next_event()
    assert info.value.status_hint == 513


def test_continuation_line_that_looks_like_content_length_is_not_one() -> None:
    data = message(b"ab").replace(b"Call-ID: c", b"Call-ID: c\r\n l: 9")
    framer = StreamFramer()
    framer.feed(data)
    assert framer.next_event() == data
