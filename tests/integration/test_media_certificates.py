"""The operator's DTLS certificate through ``rtcgw run``.

The handbook's configuration with ``dtls_certificate`` / ``dtls_key`` naming a leaf whose
PEM also carries the intermediate that signed it (generated here), and a small
``dtls_mtu``. The gateway's SDP fingerprint is the leaf's, and no DTLS datagram it sends
exceeds the MTU (a scripted browser measures them). With an RSA-4096 leaf the scripted
browser's SRTP comes back echoed by the PBX; aiortc, whose DTLS offers ECDSA cipher
suites only, gets an EC leaf under RSA-4096 CAs and hears its tone.
"""

from __future__ import annotations

from pathlib import Path

import trio

from tests.integration.browser import Browser, Call
from tests.integration.handbook import handbook_config
from tests.integration.sipp import finish, free_udp_port, start_scenario, start_sipp
from tests.integration.test_handbook import handbook_gateway
from tests.integration.webrtc_peer import WebRtcPeer
from tests.worker.media.harness import (
    OperatorPki,
    ScriptedBrowser,
    operator_pki,
    sha256_fingerprint,
    until,
)

TONE_HZ = 1000.0
MTU = 700


def with_operator_certificate(config: Path, chain: Path, key: Path) -> Path:
    text = config.read_text(encoding="utf-8")
    replacements = (
        # only for generated certificates: refused next to dtls_key
        ('dtls_key_type = "ec-p256"\n', ""),
        ('# dtls_certificate = "tls/dtls.crt"', f'dtls_certificate = "{chain}"'),
        ('# dtls_key = "tls/dtls.key"', f'dtls_key = "{key}"\ndtls_mtu = {MTU}'),
    )
    for old, new in replacements:
        assert text.count(old) == 1, f"the handbook no longer has {old!r}"
        text = text.replace(old, new)
    config.write_text(text, encoding="utf-8")
    return config


def fingerprints(sdp: bytes) -> list[str]:
    return [
        line.split(" ", 1)[1]
        for line in sdp.decode().splitlines()
        if line.startswith("a=fingerprint:sha-256 ")
    ]


async def scripted_call(
    alice: Browser, nursery: trio.Nursery, expected: str
) -> tuple[ScriptedBrowser, Call]:
    """alice calls the PBX with a scripted browser's media, connected (ICE, DTLS)."""
    scripted = await ScriptedBrowser.open()
    call, final = await alice.invite("bob", sdp=scripted.sdp())
    assert final.status == 200, final
    await alice.ack(call)
    gateway_ice = scripted.learn(final.body)
    assert dict(gateway_ice.fingerprints)["sha-256"] == expected
    await nursery.start(scripted.run)
    await scripted.connect()
    print(f"largest DTLS datagram from the gateway: {scripted.largest_dtls_datagram}")
    assert 0 < scripted.largest_dtls_datagram <= MTU
    return scripted, call


async def run_with(tmp_path: Path, pki: OperatorPki, *, aiortc: bool) -> None:
    expected = sha256_fingerprint(pki.leaf_der)
    pbx_port = free_udp_port()
    with trio.fail_after(90):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        config = with_operator_certificate(
            handbook_config(tmp_path, pbx_port), pki.leaf_chain, pki.leaf_key
        )
        async with (
            handbook_gateway(config) as (gateway, alice),
            WebRtcPeer.start() as peer,
            trio.open_nursery() as nursery,
        ):
            assert (await alice.register()).status == 200
            assert await finish(registrar) == 0
            pbx = await start_sipp(
                "-sn", "uas", "-p", str(pbx_port), "-m", "2" if aiortc else "1",
                "-rtp_echo", "-mp", str(free_udp_port()),
            )  # fmt: skip
            calls: list[Call] = []
            if aiortc:
                offer = await peer.offer(audio="pcmu", tone_hz=TONE_HZ)
                call, final = await alice.invite("bob", sdp=offer.encode())
                assert final.status == 200, final
                assert fingerprints(final.body) == [expected]
                await alice.ack(call)
                calls.append(call)
                await peer.accept_answer(final.body.decode())
                stats = await peer.wait_for_audio(min_frames=100, timeout_s=20)
                print(f"aiortc heard {stats.audio_hz} Hz over DTLS {stats.dtls_state}")
                assert stats.dtls_state == "connected"
                assert stats.audio_hz is not None and abs(stats.audio_hz - TONE_HZ) < 20
            scripted, call = await scripted_call(alice, nursery, expected)
            calls.append(call)
            # SRTP keyed by that handshake works: the PBX's echo comes back decrypted.
            for _ in range(20):
                await scripted.send_rtp()
            await until(lambda: len(scripted.received) >= 10, "the echo", timeout_s=10)
            assert scripted.auth_failures == scripted.replay_failures == 0
            for each in calls:
                assert (await alice.bye(each)).status == 200
            assert await finish(pbx) == 0
            nursery.cancel_scope.cancel()
        scripted.sock.close()
    connected = gateway.matching("media.dtls_connected")
    assert len(connected) == len(calls), connected


async def test_an_operator_rsa_4096_leaf_with_its_chain_keys_srtp_within_the_mtu(
    tmp_path: Path,
) -> None:
    await run_with(tmp_path, operator_pki(tmp_path, leaf_bits=4096, name="operator"), aiortc=False)


async def test_an_operator_chain_of_rsa_4096_cas_serves_an_aiortc_browser(
    tmp_path: Path,
) -> None:
    pki = operator_pki(tmp_path, leaf_bits=None, ca_bits=4096, name="operator")
    await run_with(tmp_path, pki, aiortc=True)
