"""The operator's DTLS certificate, trusted CA and "mandate client certificate" from the
configuration, as the worker's relay uses them: a large certificate (RSA 4096 with an
intermediate) completes the handshake in both roles and no DTLS datagram either way
exceeds the configured MTU; a CA makes the chain of the peer's certificate count."""

from __future__ import annotations

import pytest

from rtcgw.media.certificates import load_certificate
from rtcgw.media.dtls import DtlsState
from rtcgw.media.errors import MediaConfigError
from rtcgw.worker.media.streams import Drop
from tests.worker.media.harness import (
    OperatorPki,
    browser_calls_phone,
    operator_pki,
    phone_calls_browser,
    running_gateway,
    sha256_fingerprint,
    until,
)
from tests.worker.media.test_relay import assert_flows

MTU = 600


@pytest.fixture(scope="module")
def gateway_pki(tmp_path_factory: pytest.TempPathFactory) -> OperatorPki:
    return operator_pki(tmp_path_factory.mktemp("pki"), leaf_bits=4096, name="gateway")


@pytest.fixture(scope="module")
def browser_pki(tmp_path_factory: pytest.TempPathFactory) -> OperatorPki:
    return operator_pki(tmp_path_factory.mktemp("pki"), leaf_bits=2048, name="browser")


@pytest.mark.parametrize("gateway_is_server", [True, False])
async def test_an_rsa_4096_chain_completes_dtls_within_the_mtu(
    gateway_pki: OperatorPki, gateway_is_server: bool
) -> None:
    options = {
        "dtls_certificate": gateway_pki.leaf_chain,
        "dtls_key": gateway_pki.leaf_key,
        "dtls_mtu": MTU,
    }
    async with running_gateway(**options) as gateway:
        setup = "active" if gateway_is_server else "passive"
        async with phone_calls_browser(gateway, setup=setup) as call:
            assert call.browser.gateway is not None
            fingerprints = dict(call.browser.gateway.fingerprints)
            assert fingerprints["sha-256"] == sha256_fingerprint(gateway_pki.leaf_der)
            await assert_flows(call)
            dtls = call.transport.dtls
            assert dtls is not None
            sent, received = dtls.largest_datagram, call.browser.largest_dtls_datagram
    print(f"largest DTLS datagram: gateway sent {sent}, browser got {received}, MTU {MTU}")
    assert 0 < sent <= MTU and 0 < received <= MTU
    # The certificate flight alone is larger than the MTU: it was really fragmented.
    assert sum(dtls.flights) > MTU


async def test_with_a_ca_the_peer_chain_must_lead_to_it(browser_pki: OperatorPki) -> None:
    trusted = load_certificate(browser_pki.leaf_chain, browser_pki.leaf_key)
    options = {"dtls_ca": browser_pki.root, "dtls_require_peer_certificate": True}
    async with running_gateway(**options) as gateway:
        async with browser_calls_phone(gateway, certificate=trusted) as call:
            await assert_flows(call, 5)
        # A self-signed browser certificate: its fingerprint matches, its chain does not.
        async with browser_calls_phone(gateway, connect=False) as stranger:
            browser = stranger.browser
            await browser.send_check()
            browser.start_dtls()
            await browser._send_dtls(browser.dtls.start(0.0))  # type: ignore[union-attr]
            dtls = stranger.transport.dtls
            assert dtls is not None
            await until(lambda: dtls.state is DtlsState.FAILED, "the refused chain")
            assert stranger.transport.srtp is None and not dtls.fingerprint_mismatch
            await stranger.phone.send(stranger.phone.packet())
            await until(lambda: stranger.browser_drops(Drop.NOT_READY) == 1, "a drop")
    print(f"refused: {dtls.failure}")


async def test_a_key_that_does_not_match_the_certificate_is_refused_at_start(
    gateway_pki: OperatorPki, browser_pki: OperatorPki
) -> None:
    options = {"dtls_certificate": gateway_pki.leaf_chain, "dtls_key": browser_pki.leaf_key}
    with pytest.raises(MediaConfigError, match="does not match"):
        async with running_gateway(**options):
            pass
