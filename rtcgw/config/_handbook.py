"""The handbook's WebRTC setup, generated from the ``[pbx]`` shorthand.

A file without ``[realms]`` may give just the PBX's address in ``[pbx]``; the loader then
builds the two realms of the ABC SBC handbook's WebRTC example, the same ones that
``examples/gateway.toml`` spells out:

- realm ``rtc``: call agent ``browsers`` (every source on the websocket interface; with
  several websocket interfaces, one call agent each: ``browsers``, ``browsers_<name>``...).
  A-rules: ``register_upstream`` (REGISTER: caching, throttling, route to ``pbx``),
  ``call_to_pbx`` (INVITE: anchoring with ICE and RTCP feedback, dialog handling,
  183 -> 180, route to ``pbx``) and ``message_to_pbx`` (MESSAGE: route to ``pbx``).
  C-rule ``webrtc_media`` (INVITE: anchoring with ICE and RTCP feedback, SRTP keyed by
  DTLS, dialog handling).
- realm ``pbx``: call agent ``pbx`` (the address, on the sip interface), and, with several
  sip interfaces, ``pbx_<name>`` on each other one (the same sources, no destination: the
  PBX may send over TCP what we send it over UDP). A-rules
  ``call_to_browser`` and ``message_to_browser`` (INVITE, MESSAGE: retarget from the
  registration cache, route to ``browsers``). C-rule ``plain_rtp`` (INVITE: force plain
  RTP).

``[pbx]`` holds ``address`` ("host:port" or a SIP URI) and, optionally, ``sources`` (CIDRs
the PBX sends from; by default the address itself, so a host name needs them). The
shorthand needs at least one websocket interface, one media interface, and one sip
interface for the PBX: the only one, or the one whose transport the address names (udp
when it names none), so ``rtcgw run`` can listen on udp and tcp at once. Anything else is
written as ``[realms]``.
"""

from __future__ import annotations

from collections.abc import Sequence

from rtcgw.config._reader import Absent, Table, as_str
from rtcgw.config._realms import make_destination, read_sources, sources_from_destination
from rtcgw.config._values import BadValue, parse_destination
from rtcgw.config.actions import (
    DialogHandling,
    ForceRtp,
    ForceSrtp,
    Mediate183To180,
    RegisterCaching,
    RegisterThrottling,
    RetargetFromCache,
    Route,
    RtpAnchoring,
    SrtpKeying,
)
from rtcgw.config.schema import (
    AllSources,
    ARule,
    CallAgent,
    Conditions,
    CRule,
    Interface,
    InterfaceKind,
    Realm,
)
from rtcgw.sip.transport import Transport

__all__ = ["PBX_AGENT", "PBX_REALM", "RTC_AGENT", "RTC_REALM", "handbook_realms", "pbx_realms"]

RTC_REALM, RTC_AGENT = "rtc", "browsers"
PBX_REALM, PBX_AGENT = "pbx", "pbx"

_INVITE = Conditions(method=("INVITE",))
_REGISTER = Conditions(method=("REGISTER",))
_MESSAGE = Conditions(method=("MESSAGE",))
_WEBRTC_ANCHORING = RtpAnchoring(offer_ice=True, offer_rtcp_feedback=True)


def handbook_realms(
    browser_agents: Sequence[CallAgent],
    pbx: CallAgent,
    media: str,
    *,
    pbx_elsewhere: Sequence[CallAgent] = (),
) -> tuple[Realm, Realm]:
    """The handbook's two realms around the given call agents (see the module docstring);
    ``pbx_elsewhere`` are the PBX's agents on the other sip interfaces."""
    browsers = browser_agents[0]
    rtc = Realm(
        name=browsers.realm,
        media=media,
        call_agents=tuple(browser_agents),
        a_rules=(
            ARule(
                name="register_upstream",
                when=_REGISTER,
                actions=(RegisterCaching(), RegisterThrottling(), Route(pbx.name)),
            ),
            ARule(
                name="call_to_pbx",
                when=_INVITE,
                actions=(
                    _WEBRTC_ANCHORING,
                    DialogHandling(),
                    Mediate183To180(),
                    Route(pbx.name),
                ),
            ),
            ARule(name="message_to_pbx", when=_MESSAGE, actions=(Route(pbx.name),)),
        ),
        c_rules=(
            CRule(
                name="webrtc_media",
                when=_INVITE,
                actions=(
                    _WEBRTC_ANCHORING,
                    ForceSrtp(keying=SrtpKeying.DTLS),
                    DialogHandling(),
                ),
            ),
        ),
    )
    pbx_realm = Realm(
        name=pbx.realm,
        media=media,
        call_agents=(pbx, *pbx_elsewhere),
        a_rules=(
            ARule(
                name="call_to_browser",
                when=_INVITE,
                actions=(RetargetFromCache(), Route(browsers.name)),
            ),
            ARule(
                name="message_to_browser",
                when=_MESSAGE,
                actions=(RetargetFromCache(), Route(browsers.name)),
            ),
        ),
        c_rules=(CRule(name="plain_rtp", when=_INVITE, actions=(ForceRtp(),)),),
    )
    return rtc, pbx_realm


def pbx_realms(
    table: Table, interfaces: Sequence[Interface], media: str, *, count: bool = True
) -> tuple[Realm, Realm] | None:
    """Read ``[pbx]`` (``address``, optional ``sources``) and build the handbook's realms.

    With ``count`` false, a wrong number of interfaces is not reported (the caller knows
    some failed to load and were reported already); no realms are built either way.
    """
    websockets = [i for i in interfaces if i.type is InterfaceKind.WEBSOCKET]
    sips = [i for i in interfaces if i.type is InterfaceKind.SIP]
    address = table.required("address", as_str, 'the PBX as "host:port" or a SIP URI')
    sip = _pbx_interface(sips, address if isinstance(address, str) else None)
    destination = make_destination(table, "address", sip) if "address" in table else None
    sources = read_sources(table, "sources")
    table.finish()
    if not websockets or sip is None:
        if not count:
            return None
        table.problem(
            None,
            f"the [pbx] shorthand needs a websocket interface and one sip interface for the "
            f"PBX's transport, not {len(websockets)} and {len(sips)}: write [realms] instead",
        )
        return None
    if not isinstance(address, str) or destination is None or sources is Absent.INVALID:
        return None
    browsers = [
        CallAgent(
            name=RTC_AGENT if index == 0 else f"{RTC_AGENT}_{interface.name}",
            realm=RTC_REALM,
            interface=interface.name,
            sources=AllSources.ALL,
        )
        for index, interface in enumerate(websockets)
    ]
    if sources is Absent.MISSING:
        # Same default as a call agent: an IP-literal address is also where requests come from.
        sources = sources_from_destination(destination)
        if not sources:
            # The shorthand promises calls from the PBX to browsers; they need a source match.
            table.problem(
                "sources",
                f"missing: {destination.host!r} is a name, so list the PBX's source "
                "addresses (CIDRs) for its calls to browsers",
            )
            return None
    pbx = CallAgent(
        name=PBX_AGENT,
        realm=PBX_REALM,
        interface=sip.name,
        sources=sources,
        destination=destination,
    )
    # A PBX may send over another transport than the one we send on (RFC 3261 18.1.1: a
    # large request goes over TCP), so its sources belong to it on every sip interface.
    elsewhere = [
        CallAgent(name=f"{PBX_AGENT}_{i.name}", realm=PBX_REALM, interface=i.name, sources=sources)
        for i in sips
        if i is not sip
    ]
    return handbook_realms(browsers, pbx, media, pbx_elsewhere=elsewhere)


def _pbx_interface(sips: Sequence[Interface], address: str | None) -> Interface | None:
    """The sip interface toward the PBX: the only one, or the one of the address's transport."""
    if len(sips) == 1:
        return sips[0]
    if address is None:
        return None
    try:
        _host, _port, transport = parse_destination(address)
    except BadValue:
        return None  # make_destination reports the address itself
    wanted = transport if transport is not None else Transport.UDP
    matching = [i for i in sips if i.transport is wanted]
    return matching[0] if len(matching) == 1 else None
