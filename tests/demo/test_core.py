"""The demo service's registrar, proxy and extensions, without a network."""

from __future__ import annotations

from collections.abc import Sequence

from rtcgw.demo import DemoCore, DigestAuth, Registrar
from rtcgw.demo.core import LogEvent, Retransmit, Send, StartMedia, StopMedia
from rtcgw.demo.media import encode_g711, parse_offer, tone_frames
from rtcgw.sip import Request, Response, make_response, parse_message, parse_uri
from tests.integration.digest import credentials
from tests.integration.tone import decode_pcma, decode_pcmu, dominant_frequency

DEMO = ("127.0.0.1", 5070)
GATEWAY = ("127.0.0.1", 5080)
OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


def _core() -> DemoCore:
    return DemoCore(*DEMO, Registrar(DigestAuth("demo", b"secret", users={"boss": "s3cret"})))


def _request(
    method: str, uri: str, *, user: str = "1001", extra: str = "", body: bytes = b""
) -> Request:
    text = (
        f"{method} {uri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKgw1;rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:{user}@example.test>;tag=f1\r\n"
        f"To: <sip:{uri.split(':')[1].split('@', maxsplit=1)[0]}@example.test>\r\n"
        "Call-ID: call-1\r\n"
        f"CSeq: 1 {method}\r\n"
        "Contact: <sip:alias-1@127.0.0.1:5080>\r\n"
        f"{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    message = parse_message(text.encode() + body)
    assert isinstance(message, Request)
    return message


def _sends(actions: Sequence[object]) -> list[Send]:
    return [a for a in actions if isinstance(a, Send)]


def _register(core: DemoCore, user: str, password: str, now: float = 0.0) -> Response:
    register = _request("REGISTER", "sip:example.test", user=user, extra="Expires: 600\r\n")
    register = register.with_header_replaced("To", f"<sip:{user}@example.test>")
    challenge = _sends(core.handle(register, GATEWAY, now))[0].message
    assert isinstance(challenge, Response) and challenge.status == 401
    value = credentials(
        challenge.get("WWW-Authenticate") or "",
        method="REGISTER",
        uri="sip:example.test",
        username=user,
        password=password,
    )
    sent = _sends(core.handle(register.with_header("Authorization", value), GATEWAY, now))
    response = sent[0].message
    assert isinstance(response, Response)
    assert sent[0].destination == GATEWAY
    return response


def test_the_registrar_takes_the_user_name_or_the_table_as_password() -> None:
    core = _core()
    assert _register(core, "1001", "1001").status == 200
    assert _register(core, "boss", "s3cret").status == 200
    assert _register(core, "1002", "nope").status == 401
    assert _register(core, "boss", "boss").status == 401
    assert core.registrar.users(1.0) == ["1001", "boss"]
    # Bindings end with their expiry.
    assert core.registrar.users(601.0) == []


def test_an_invite_to_a_registered_user_is_record_routed_to_its_contact() -> None:
    core = _core()
    _register(core, "1002", "1002")
    invite = _request("INVITE", "sip:1002@example.test", body=OFFER)
    sent = _sends(core.handle(invite, GATEWAY, 1.0))
    assert len(sent) == 1 and sent[0].destination == GATEWAY
    forwarded = sent[0].message
    assert isinstance(forwarded, Request)
    assert str(forwarded.uri) == "sip:alias-1@127.0.0.1:5080"
    assert forwarded.record_routes[0].uri == parse_uri("sip:127.0.0.1:5070;lr")
    assert [v.host for v in forwarded.vias] == ["127.0.0.1", "127.0.0.1"]
    assert forwarded.vias[1].param("rport") == "5080"
    assert forwarded.get("Max-Forwards") == "69"
    # Its CANCEL takes the same branch to the same place: it meets the INVITE there.
    cancel = _request("CANCEL", "sip:1002@example.test")
    cancelled = _sends(core.handle(cancel, GATEWAY, 1.0))[0].message
    assert isinstance(cancelled, Request)
    assert cancelled.top_via.param("branch") == forwarded.top_via.param("branch")
    # The answer goes back on the next Via, without ours.
    ok = make_response(forwarded, 200, to_tag="t2")
    back = _sends(core.handle(ok, GATEWAY, 1.0))
    assert back[0].destination == GATEWAY
    assert [v.param("branch") for v in back[0].message.vias] == ["z9hG4bKgw1"]


def test_in_dialog_requests_follow_the_route_through_the_proxy() -> None:
    core = _core()
    bye = _request(
        "BYE", "sip:alias-2@127.0.0.1:5090", extra="Route: <sip:127.0.0.1:5070;lr>\r\n"
    ).with_header_replaced("To", "<sip:1002@example.test>;tag=t2")
    sent = _sends(core.handle(bye, GATEWAY, 1.0))
    assert sent[0].destination == ("127.0.0.1", 5090)
    assert not sent[0].message.has("Route")


def test_an_unregistered_user_is_480_and_a_spent_max_forwards_483() -> None:
    core = _core()
    sent = _sends(core.handle(_request("INVITE", "sip:1009@example.test"), GATEWAY, 1.0))
    assert isinstance(sent[0].message, Response) and sent[0].message.status == 480
    looped = _request("INVITE", "sip:1009@example.test").with_header_replaced("Max-Forwards", "0")
    sent = _sends(core.handle(looped, GATEWAY, 1.0))
    assert isinstance(sent[0].message, Response) and sent[0].message.status == 483


def test_the_tone_extension_answers_pcmu_and_ends_on_bye() -> None:
    core = _core()
    invite = _request("INVITE", "sip:601@example.test", body=OFFER)
    assert core.needs_media_port(invite)
    actions = core.handle(invite, GATEWAY, 1.0, media_port=30000)
    ok = _sends(actions)[0].message
    assert isinstance(ok, Response) and ok.status == 200
    answer = parse_offer(ok.body)
    assert answer is not None and answer.port == 30000 and answer.payload_types == (0, 101)
    start = next(a for a in actions if isinstance(a, StartMedia))
    assert (start.remote, start.codec, start.event_payload_type) == (
        ("127.0.0.1", 40000),
        "PCMU",
        101,
    )
    assert any(isinstance(a, Retransmit) for a in actions)
    assert core.awaiting_ack("call-1", 1)
    to = f"<sip:601@example.test>;tag={ok.to_tag}"
    core.handle(
        _request("ACK", "sip:601@127.0.0.1:5070")
        .with_header_replaced("To", to)
        .with_header_replaced("CSeq", "1 ACK"),
        GATEWAY,
        1.1,
    )
    assert not core.awaiting_ack("call-1", 1)
    info = (
        _request(
            "INFO",
            "sip:601@127.0.0.1:5070",
            extra="Content-Type: application/dtmf-relay\r\n",
            body=b"Signal=5\r\nDuration=160\r\n",
        )
        .with_header_replaced("To", to)
        .with_header_replaced("CSeq", "2 INFO")
    )
    logged = [a for a in core.handle(info, GATEWAY, 1.2) if isinstance(a, LogEvent)]
    assert logged[0].fields["digit"] == "5"
    bye = (
        _request("BYE", "sip:601@127.0.0.1:5070")
        .with_header_replaced("To", to)
        .with_header_replaced("CSeq", "3 BYE")
    )
    ended = core.handle(bye, GATEWAY, 2.0)
    assert any(isinstance(a, StopMedia) for a in ended)
    assert core.calls() == []


def test_the_tone_extension_refuses_an_offer_without_g711() -> None:
    core = _core()
    opus_only = OFFER.replace(b"RTP/AVP 0 8 101", b"RTP/AVP 111").replace(
        b"a=rtpmap:101 telephone-event/8000", b"a=rtpmap:111 opus/48000/2"
    )
    actions = core.handle(
        _request("INVITE", "sip:601@example.test", body=opus_only), GATEWAY, 1.0, media_port=30000
    )
    response = _sends(actions)[0].message
    assert isinstance(response, Response) and response.status == 488
    assert core.calls() == []


def test_the_tone_is_440_hz_in_both_g711_laws() -> None:
    for codec, decode in (("PCMU", decode_pcmu), ("PCMA", decode_pcma)):
        frames = tone_frames(440.0, codec)
        assert len(frames) == 50 and all(len(f) == 160 for f in frames)
        samples = decode(b"".join(frames))
        hz = dominant_frequency(samples, 8000)
        print(f"{codec}: {hz:.1f} Hz")
        assert abs(hz - 440.0) < 5
        # Round trip of a few values through the encoder and the reference decoder.
        assert abs(decode(encode_g711([1000], codec))[0] - 1000) < 40
