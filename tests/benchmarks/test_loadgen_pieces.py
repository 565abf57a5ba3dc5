"""The pieces behind the one-way delay, RSS and rtpengine figures, one at a time.

Loopback only, every wait under ``fail_after``; nothing here asserts on a timing.
"""

from __future__ import annotations

import os
import socket
import time
from array import array

import pytest
import trio
from aioice import stun

from benchmarks.loadgen.children import spawn
from benchmarks.loadgen.delays import SelfLoop, delay_percentiles
from benchmarks.loadgen.figures import delays, rss_figures
from benchmarks.loadgen.probe import (
    ECHO_NS_OFFSET,
    HEADER_BYTES,
    PAYLOAD_BYTES,
    Phase,
    pack_probe,
    stamp_echo,
    unpack_probe,
)
from benchmarks.loadgen.procstat import ProcessGone, rss_kb
from benchmarks.loadgen.rtpengine import NgClient, NgError, bdecode, bencode
from benchmarks.loadgen.sip_uac import UdpSipCall
from benchmarks.loadgen.webrtc_media import MediaPump
from rtcgw.config import DtlsKeyType
from rtcgw.media.certificates import generate_certificate
from rtcgw.media.dtls import DtlsContexts, DtlsSettings
from rtcgw.media.stun import verify_integrity

# -- probes ---------------------------------------------------------------------------------


def test_a_probe_leaves_the_sender_unstamped_and_the_echo_stamps_it_in_place() -> None:
    payload = bytearray(b"\x80" * 12 + pack_probe(Phase.MEASURE, 7, 42, 1_000))
    assert len(payload) == 12 + PAYLOAD_BYTES
    assert unpack_probe(payload, 12) == (Phase.MEASURE, 7, 42, 1_000, 0)

    assert stamp_echo(payload, 12, 5_000) == 1_000
    assert unpack_probe(payload, 12) == (Phase.MEASURE, 7, 42, 1_000, 5_000)
    assert ECHO_NS_OFFSET + 8 == HEADER_BYTES


def test_a_payload_shorter_than_the_probe_header_is_not_a_probe() -> None:
    assert unpack_probe(pack_probe(0, 1, 2, 3)[: HEADER_BYTES - 1]) is None


# -- delays ---------------------------------------------------------------------------------


def test_delay_percentiles_are_nearest_rank_in_milliseconds() -> None:
    samples = array("q", range(1, 1001))  # 1 us .. 1000 us
    figures = delay_percentiles(samples)
    assert figures == {"p50": 0.5, "p99": 0.99, "p99.9": 0.999, "max": 1.0, "samples": 1000}


def test_delay_percentiles_without_samples_are_none() -> None:
    assert delay_percentiles(array("q")) == {
        "p50": None,
        "p99": None,
        "p99.9": None,
        "max": None,
        "samples": 0,
    }


async def test_a_self_loop_reads_back_its_own_stamps_only_while_recording() -> None:
    loop = SelfLoop()
    try:
        with trio.fail_after(5):
            loop.send()
            await trio.lowlevel.wait_readable(loop.sock)
            loop.drain(record=False)
            loop.send()
            await trio.lowlevel.wait_readable(loop.sock)
            loop.drain(record=True)
        assert len(loop.samples_us) == 1
        assert loop.samples_us[0] >= 0
        assert loop.send_failed == 0
    finally:
        loop.close()


def test_delays_take_each_direction_from_the_side_that_receives_it() -> None:
    echo = {"one_way_ms": {"browser_to_sip": {"p50": 0.1}}}
    browser = {"one_way_ms": {"sip_to_browser": {"p50": 0.2}}}
    assert delays(echo, browser, "one_way_ms") == {
        "browser_to_sip": {"p50": 0.1},
        "sip_to_browser": {"p50": 0.2},
    }
    assert delays(echo, {}, "one_way_ms")["sip_to_browser"] is None


# -- RSS ------------------------------------------------------------------------------------


def test_rss_of_this_process_is_read_from_proc() -> None:
    assert rss_kb(os.getpid()) > 0


def test_rss_of_a_process_that_is_gone_says_so() -> None:
    with pytest.raises(ProcessGone):
        rss_kb(2**22 + 1)  # above the kernel's pid_max limit: never a process


def test_rss_per_call_sums_the_growth_of_every_process_and_splits_it_by_kind() -> None:
    idle = {"supervisor": 1000, "worker0": 2000, "worker1": 2000, "gone": 500}
    loaded = {"supervisor": 1100, "worker0": 2600, "worker1": 2400, "gone": None}
    figures = rss_figures(idle, loaded, 10, lambda n: "workers" if n.startswith("w") else n)
    assert figures["rss_kb"]["worker0"] == {"idle": 2000, "loaded": 2600}
    assert figures["rss_kb"]["gone"] == {"idle": 500, "loaded": None}
    assert figures["rss_kb_per_call"] == 110.0  # (100 + 600 + 400) / 10
    assert figures["rss_kb_per_call_by_kind"] == {"supervisor": 10.0, "workers": 100.0}
    assert rss_figures(idle, loaded, 0, str)["rss_kb_per_call"] is None


# -- bencode and the ng client --------------------------------------------------------------


def test_bencode_writes_the_ng_protocol_examples_byte_for_byte() -> None:
    assert bencode({"command": "ping"}) == b"d7:command4:pinge"
    assert bdecode(b"d6:result4:ponge") == {"result": "pong"}


def test_bencode_round_trips_nested_values_with_sorted_keys() -> None:
    value = {"sdp": "v=0\r\n", "rtcp-mux": ["demux"], "n": -3, "flags": [], "d": {"a": 1}}
    encoded = bencode(value)
    assert encoded.startswith(b"d1:dd1:ai1ee5:flagsle1:ni-3e")  # keys in byte order
    assert bdecode(encoded) == value


@pytest.mark.parametrize(
    "data", [b"", b"i12", b"5:abc", b"d3:keye", b"x", b"d6:result4:ponge!", b"di1ei2ee"]
)
def test_bdecode_refuses_what_is_not_one_whole_value(data: bytes) -> None:
    with pytest.raises(ValueError):
        bdecode(data)


async def _fake_rtpengine(
    sock: trio.socket.SocketType, seen: list[bytes], *, ignore_first: bool, reply: bytes
) -> None:
    """Answer each request with ``reply`` under its cookie; drop the very first if told."""
    while True:
        data, source = await sock.recvfrom(65535)
        seen.append(data)
        if ignore_first and len(seen) == 1:
            continue
        cookie = data.partition(b" ")[0]
        await sock.sendto(cookie + b" " + reply, source)


async def test_the_ng_client_retransmits_with_the_same_cookie_and_never_reuses_one() -> None:
    seen: list[bytes] = []
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        await server.bind(("127.0.0.1", 0))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: _fake_rtpengine(server, seen, ignore_first=True, reply=b"d6:result4:ponge")
            )
            client = NgClient(server.getsockname())
            with trio.fail_after(10):
                await client.ping()
                await client.ping()
            nursery.cancel_scope.cancel()
    cookies = [data.partition(b" ")[0] for data in seen]
    assert len(cookies) == 3
    assert cookies[0] == cookies[1]  # the lost first request was sent again, same cookie
    assert cookies[2] != cookies[0]  # the next request has a fresh one
    assert client.retransmissions == 1
    assert all(data.endswith(b" d7:command4:pinge") for data in seen)


async def test_an_ng_error_reply_raises_with_rtpengine_s_reason() -> None:
    seen: list[bytes] = []
    reply = bencode({"result": "error", "error-reason": "Unknown call-id"})
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        await server.bind(("127.0.0.1", 0))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: _fake_rtpengine(server, seen, ignore_first=False, reply=reply)
            )
            client = NgClient(server.getsockname())
            with trio.fail_after(10), pytest.raises(NgError, match="Unknown call-id"):
                await client.delete("no-such-call", "tag")
            nursery.cancel_scope.cancel()
    assert bdecode(seen[0].partition(b" ")[2]) == {
        "command": "delete",
        "call-id": "no-such-call",
        "from-tag": "tag",
    }


# -- the pump answers the checks of a relay running full ICE ------------------------------


def _check(ufrag: str, pwd: str) -> stun.Message:
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    request.attributes["USERNAME"] = f"{ufrag}:peer"
    request.attributes["PRIORITY"] = 1853824767
    request.attributes["ICE-CONTROLLED"] = 1234
    request.add_message_integrity(pwd.encode())
    return request


async def test_the_pump_answers_a_relay_s_check_as_a_browser_does_and_refuses_a_forged_one() -> (
    None
):
    certificate = generate_certificate(DtlsKeyType.EC_P256, common_name="test")
    pump = MediaPump(DtlsContexts(DtlsSettings(certificate=certificate)))
    call = pump.open_call(0)
    forged = _check(call.ice_ufrag, "not-the-password")
    genuine = _check(call.ice_ufrag, call.ice_pwd)
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as relay:
        await relay.bind(("127.0.0.1", 0))
        relay_address = relay.getsockname()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump.run, trio.current_time() + 30)
            with trio.fail_after(10):
                # Same socket, in order: when the genuine check's answer arrives, the
                # forged one was read (and refused) before it.
                await relay.sendto(bytes(forged), call.sock.getsockname())
                await relay.sendto(bytes(genuine), call.sock.getsockname())
                data = await relay.recv(2048)
            nursery.cancel_scope.cancel()
    response = stun.parse_message(data)
    assert response.message_class == stun.Class.RESPONSE
    assert response.transaction_id == genuine.transaction_id
    assert response.attributes["XOR-MAPPED-ADDRESS"] == relay_address
    assert "FINGERPRINT" in response.attributes
    assert verify_integrity(data, call.ice_pwd.encode())
    assert (call.checks_answered, call.checks_refused) == (1, 1)


# -- the SIP side: INVITE over UDP, the echo stamps and measures ----------------------------


async def test_the_echo_measures_the_way_in_and_stamps_the_way_back() -> None:
    with trio.fail_after(60):
        async with spawn("SIP side", "benchmarks.loadgen.pbx", ["--max-seconds", "60"]) as pbx:
            ready = await pbx.wait_for("ready")
            target = ("127.0.0.1", int(ready["sip_port"]))
            async with UdpSipCall(target, caller="a", callee="echo", domain="example.test") as sip:
                offer = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
                final = await sip.invite(offer)
                port = next(
                    int(line.split()[1])
                    for line in final.body.decode().splitlines()
                    if line.startswith("m=audio ")
                )
                with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp:
                    await rtp.bind(("127.0.0.1", 0))
                    header = bytes([0x80, 0]) + bytes(10)
                    for phase in (Phase.WARMUP, Phase.MEASURE):
                        sent_ns = time.monotonic_ns()
                        probe = pack_probe(phase, 3, 1, sent_ns)
                        await rtp.sendto(header + probe, ("127.0.0.1", port))
                        echoed = await rtp.recv(2048)
                        fields = unpack_probe(echoed, 12)
                        assert fields is not None
                        assert fields[:4] == (phase, 3, 1, sent_ns)
                        assert fields[4] >= sent_ns  # the echo's send time, on the same clock
                assert await sip.bye() == 200
            await pbx.send("report")
            report = await pbx.wait_for("report")
    assert report["received"][Phase.MEASURE] == 1
    assert report["echoed"][Phase.WARMUP] == 1
    # Only the measuring-window probe is a sample.
    assert report["one_way_ms"]["browser_to_sip"]["samples"] == 1
    assert set(report["floor_ms"]["browser_to_sip"]) == {"p50", "p99", "p99.9", "max", "samples"}
