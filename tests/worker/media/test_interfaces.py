"""Each media interface has its own DTLS certificate: a leg's fingerprint and handshake use
the interface its realm names, not the first one declared."""

from __future__ import annotations

import dataclasses
import random
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from rtcgw.config import GatewayConfig, PortRange
from rtcgw.worker.boot import WorkerBoot
from rtcgw.worker.media.build import build_media
from rtcgw.worker.media.events import MediaEvent
from tests.worker.media.harness import (
    Gateway,
    browser_calls_phone,
    media_config,
    operator_pki,
    sha256_fingerprint,
)
from tests.worker.media.test_relay import assert_flows


def _two_interfaces(directory: Path) -> tuple[GatewayConfig, bytes]:
    """The handbook config with a second media interface, "browsers", carrying an operator
    certificate and serving the browsers' realm; the PBX's realm keeps the first one."""
    config = media_config(directory)
    pki = operator_pki(directory, leaf_bits=None, name="browsers")
    first = config.media[0]
    start = random.randrange(33000, 59000, 1000)
    browsers = dataclasses.replace(
        first,
        name="browsers",
        rtp_port_range=PortRange(start, start + 999),
        dtls_certificate=pki.leaf_chain,
        dtls_key=pki.leaf_key,
    )
    realms = tuple(
        dataclasses.replace(realm, media="browsers") if realm.name == "rtc" else realm
        for realm in config.realms
    )
    assert any(realm.media == first.name for realm in realms), "the PBX's realm moved"
    return dataclasses.replace(config, media=(first, browsers), realms=realms), pki.leaf_der


@asynccontextmanager
async def _gateway(config: GatewayConfig) -> AsyncIterator[Gateway]:
    events: list[MediaEvent] = []
    relay, seam = build_media(WorkerBoot(config, (), worker_count=1), 0, on_event=events.append)
    async with trio.open_nursery() as nursery:
        await nursery.start(relay.run)
        try:
            yield Gateway(config, relay, seam, events)
        finally:
            for session in list(seam.sessions.values()):
                session.close()
            nursery.cancel_scope.cancel()


async def test_the_browser_leg_uses_its_realms_certificate() -> None:
    with tempfile.TemporaryDirectory(prefix="rtcgw-media-") as directory:
        config, leaf_der = _two_interfaces(Path(directory))
        async with _gateway(config) as gateway, browser_calls_phone(gateway) as call:
            assert call.browser.gateway is not None
            fingerprints = dict(call.browser.gateway.fingerprints)
            assert fingerprints["sha-256"] == sha256_fingerprint(leaf_der)
            # The handshake presented that certificate: the browser checked it against
            # the fingerprint above, and media flows both ways.
            await assert_flows(call)
            session = call.session
            assert session.a.site is not session.b.site
            first = gateway.seam._sites[config.media[0].name]  # the PBX's interface
            assert first.dtls.fingerprint_value != fingerprints["sha-256"]
