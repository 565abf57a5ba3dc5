"""Digest authentication passes through the gateway to a PBX that checks it (sipp).

sipp's scenarios challenge with 401 (WWW-Authenticate, qop=auth) or 407
(Proxy-Authenticate) and check the retried request with ``<verifyauth>`` for alice /
secret, answering 200 only when the digest is right (403 otherwise). The browser computes
a real MD5 digest (``digest.py``) over the Request-URI it sends; its domain is the PBX's
host, so the gateway keeps that URI and the digest ``uri`` matches what the PBX checks.
"""

from __future__ import annotations

import pytest
import trio

from rtcgw.sip import Request, Response
from tests.integration.browser import browser
from tests.integration.common import args
from tests.integration.digest import md5_response, parse_challenge
from tests.integration.gateway import run_gateway
from tests.integration.sipp import finish, free_udp_port, start_scenario

PBX_HOST = "127.0.0.1"


def test_md5_digest_matches_rfc_2617_example() -> None:
    # RFC 2617 section 3.5, with the SIP method in place of GET.
    assert (
        md5_response(
            username="Mufasa",
            password="Circle Of Life",
            realm="testrealm@host.com",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            method="GET",
            uri="/dir/index.html",
            qop="auth",
            nc="00000001",
            cnonce="0a4f113b",
        )
        == "6629fae49393a05397450978507c4ef1"
    )
    assert parse_challenge('Digest realm="a, b", nonce="n", qop="auth,auth-int"') == {
        "realm": "a, b",
        "nonce": "n",
        "qop": "auth,auth-int",
    }


def check_echoed_proxy_authorization(invite: Request, ok: Response) -> None:
    """The PBX got the browser's Proxy-Authorization unchanged, and its response is the
    digest of alice / secret for INVITE and the Request-URI (sipp cannot verify it)."""
    sent = invite.get("Proxy-Authorization")
    assert sent is not None
    assert (ok.get("X-Seen-Proxy-Authorization") or "").strip() == sent
    params = parse_challenge(sent)
    assert params["uri"] == str(invite.uri)
    assert params["response"] == md5_response(
        username="alice",
        password="secret",
        realm=params["realm"],
        nonce=params["nonce"],
        method="INVITE",
        uri=str(invite.uri),
    )


@pytest.mark.parametrize(
    ("status", "challenge", "answer"),
    [
        (401, "WWW-Authenticate", "Authorization"),
        (407, "Proxy-Authenticate", "Proxy-Authorization"),
    ],
)
async def test_challenged_invite_is_retried_with_credentials(
    status: int, challenge: str, answer: str
) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        sipp = await start_scenario(f"uas_auth_{status}", "-p", str(pbx_port))
        async with (
            run_gateway(args(pbx_port)) as gateway,
            browser(gateway.address("WS"), "alice", domain=PBX_HOST) as alice,
        ):
            call, final = await alice.invite("bob", password="secret")
            # The challenge reached the browser as the PBX sent it, in the browser's dialog.
            [challenged] = call.challenges
            assert challenged.status == status
            assert challenged.call_id == call.call_id
            assert 'realm="rtcgw.test"' in (challenged.get(challenge) or "")
            # The retry went out with CSeq + 1 and the credentials; the PBX accepted it.
            assert call.invite.cseq.seq == challenged.cseq.seq + 1
            assert call.invite.get(answer) is not None
            assert final.status == 200, final
            if status == 407:
                check_echoed_proxy_authorization(call.invite, final)
            await alice.ack(call)
            assert (await alice.bye(call)).status == 200
            assert await finish(sipp) == 0
        # One call for the gateway: the retry reused the challenged B-leg's identity.
        assert len(gateway.matching("b2bua.call_started")) == 2
        b_ids = {e["b_call_id"] for e in gateway.matching("b2bua.call_started")}
        assert len(b_ids) == 1


async def test_wrong_password_is_refused_by_the_pbx() -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        sipp = await start_scenario("uas_auth_401", "-p", str(pbx_port))
        async with (
            run_gateway(args(pbx_port)) as gateway,
            browser(gateway.address("WS"), "alice", domain=PBX_HOST) as alice,
        ):
            call, final = await alice.invite("bob", password="not-the-secret")
            assert [c.status for c in call.challenges] == [401]
            assert final.status == 403
            await alice.ack_failure(call, final)
            assert await finish(sipp) == 0


async def test_register_challenged_with_401_is_retried_with_credentials() -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        registrar = await start_scenario("registrar_auth", "-p", str(pbx_port))
        async with (
            run_gateway(args(pbx_port)) as gateway,
            browser(gateway.address("WS"), "alice", domain=PBX_HOST) as alice,
        ):
            registered = await alice.register(password="secret")
            assert [r.status for r in alice.register_finals] == [401, 200]
            assert 'realm="rtcgw.test"' in (alice.register_finals[0].get("WWW-Authenticate") or "")
            assert alice.host in (registered.get("Contact") or "")
            assert await finish(registrar) == 0
            [changed] = await gateway.wait_for("binding.changed")
            assert changed.get("user") == "alice"
