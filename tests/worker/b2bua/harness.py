"""A fake browser, a fake PBX and a B2BUA between them, on a fake clock.

Messages travel as bytes: what the B2BUA sends is parsed back, and what the peers send is
serialised, so every test also covers the wire form (h11's ConnectionPair in spirit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rtcgw.config import GatewayConfig, load_config_text
from rtcgw.registrations import Binding, MemoryCache, alias_user_for
from rtcgw.sip.events import Outgoing
from rtcgw.sip.message import Request, Response
from rtcgw.sip.parse import parse_message
from rtcgw.sip.transport import Peer, Transport
from rtcgw.worker.b2bua import (
    B2bua,
    B2buaSettings,
    LocalAddress,
    Notice,
)
from tests.sip.helpers import make_request, respond_to

SHARD = 3
BROWSER = Peer(Transport.WSS, "203.0.113.5", 50000, connection_id=7)
PBX = Peer(Transport.UDP, "192.0.2.50", 5060)
GW_WS = LocalAddress("gw.example.net", 443)
GW_SIP = LocalAddress("192.0.2.1", 5060)
BROWSER_CONTACT = "sip:alice@df7jal23ls0d.invalid;transport=ws"
SDP_OFFER = b"v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n"
SDP_ANSWER = b"v=0\r\no=- 2 2 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\n"

SETTINGS = B2buaSettings(local={Transport.WSS: GW_WS, Transport.UDP: GW_SIP})

#: The handbook's realms around the fake peers (browsers on interface "wss", the PBX on
#: "sip"), without media actions: this B2BUA relays SDP as it is.
CONFIG_TEXT = f"""
[interfaces.wss]
type = "websocket"
listen = "127.0.0.1:8080"

[interfaces.sip]
type = "sip"
transport = "udp"
listen = "{GW_SIP.host}:{GW_SIP.port}"

[realms.rtc.call_agents.browsers]
interface = "wss"
sources = "all"

[[realms.rtc.a_rules]]
name = "register_upstream"
when = {{ method = "REGISTER" }}
actions = [
  {{ action = "register_caching" }},
  {{ action = "register_throttling", client_expires_s = 60, upstream_expires_s = 3600 }},
  {{ action = "route", destination = "pbx" }},
]

[[realms.rtc.a_rules]]
name = "to_pbx"
when = {{ method = ["INVITE", "MESSAGE"] }}
actions = [{{ action = "route", destination = "pbx" }}]

[realms.pbx.call_agents.pbx]
interface = "sip"
destination = "{PBX.host}:{PBX.port}"

[[realms.pbx.a_rules]]
name = "to_browser"
when = {{ method = ["INVITE", "MESSAGE"] }}
actions = [{{ action = "retarget_from_cache" }}, {{ action = "route", destination = "browsers" }}]
"""
CONFIG: GatewayConfig = load_config_text(CONFIG_TEXT, source="harness.toml")

#: The interface each fake peer's messages arrive on.
INTERFACES = {Transport.WSS: "wss", Transport.WS: "wss", Transport.UDP: "sip"}


def client_binding(
    user: str = "alice", peer: Peer = BROWSER, contact: str = BROWSER_CONTACT
) -> Binding:
    """A cached registration of ``user`` over ``peer``'s connection, as the cache holds it."""
    aor = f"{user}@pbx.example.org"
    assert peer.connection_id is not None
    return Binding(
        aor=aor,
        user=user,
        contact=contact,
        instance=None,
        reg_id=None,
        call_id=f"reg-{user}",
        connection_id=peer.connection_id,
        transport=peer.transport,
        host=peer.host,
        port=peer.port,
        alias=f"sip:{alias_user_for(user, (aor, contact))}@{GW_SIP.host}:{GW_SIP.port}",
        client_expires_at=1e9,
        upstream_expires_at=1e9,
        upstream_call_id=f"up-{user}",
        upstream_from_tag="up-tag",
        upstream_cseq=1,
        registrar_transport=PBX.transport,
        registrar_host=PBX.host,
        registrar_port=PBX.port,
        registrar_uri="sip:pbx.example.org",
    )


def browser_request(method: str = "INVITE", **kwargs: object) -> Request:
    """A request as JsSIP sends it over WSS."""
    defaults: dict[str, object] = {
        "via_transport": Transport.WSS,
        "via_host": "df7jal23ls0d.invalid",
        "via_port": None,
        "uri": "sip:bob@pbx.example.org",
        "call_id": "jssip-call-1",
        "contact": BROWSER_CONTACT,
    }
    defaults.update(kwargs)
    return make_request(method, **defaults)  # type: ignore[arg-type]


def pbx_request(method: str = "INVITE", **kwargs: object) -> Request:
    """A request from the PBX over UDP."""
    defaults: dict[str, object] = {
        "via_host": PBX.host,
        "uri": f"sip:alice@{GW_SIP.host}",
        "call_id": "pbx-call-1@192.0.2.50",
        "contact": "sip:bob@192.0.2.50:5060",
    }
    defaults.update(kwargs)
    return make_request(method, **defaults)  # type: ignore[arg-type]


def answer(
    request: Request,
    status: int,
    *,
    to_tag: str = "pbx-tag",
    contact: str | None = "sip:bob@192.0.2.50:5060",
    body: bytes = b"",
    extra: tuple[tuple[str, str], ...] = (),
    record_route: tuple[str, ...] | None = None,
) -> Response:
    """A response to ``request`` with optional body and extra headers."""
    response = respond_to(
        request,
        status,
        to_tag=to_tag,
        contact=contact if 100 < status < 300 else None,
        record_route=record_route,
    )
    for name, value in extra:
        response = response.with_header(name, value)
    if body:
        response = response.with_body(body, "application/sdp")
    return response


@dataclass
class Gateway:
    """The B2BUA under test, with a fake clock and a binding table."""

    bindings: dict[str, Binding] = field(default_factory=dict)
    now: float = 0.0
    config: GatewayConfig = CONFIG
    core: B2bua = field(init=False)
    notices: list[Notice] = field(default_factory=list)

    def __post_init__(self) -> None:
        cache = MemoryCache()
        for binding in self.bindings.values():
            cache.put(binding, "registered")
        self.core = B2bua(SETTINGS, shard=SHARD, rules=self.config, registrations=cache)

    def _take(self, outgoing: tuple[Outgoing, ...], notices: tuple[Notice, ...]) -> Sent:
        self.notices.extend(notices)
        return Sent(list(outgoing))

    def send(self, message: Request | Response, source: Peer) -> Sent:
        interface = INTERFACES[source.transport]
        out = self.core.receive_bytes(bytes(message), source, self.now, interface=interface)
        return self._take(out.outgoing, out.notices)

    def from_browser(self, message: Request | Response) -> Sent:
        return self.send(message, BROWSER)

    def from_pbx(self, message: Request | Response) -> Sent:
        return self.send(message, PBX)

    def advance(self, seconds: float) -> Sent:
        """Fire every deadline up to now + seconds, each at its own time."""
        until = self.now + seconds
        collected: list[Outgoing] = []
        while (deadline := self.core.next_deadline()) is not None and deadline <= until:
            self.now = max(self.now, deadline)
            out = self.core.handle_timeout(self.now)
            self.notices.extend(out.notices)
            collected.extend(out.outgoing)
        self.now = until
        return Sent(collected)

    def closed(self, connection_id: int) -> Sent:
        out = self.core.connection_closed(connection_id, self.now)
        return self._take(out.outgoing, out.notices)

    def of_type(self, kind: type) -> list[Notice]:
        return [n for n in self.notices if isinstance(n, kind)]


@dataclass
class Sent:
    """What one step sent, split by destination and parsed back from bytes."""

    outgoing: list[Outgoing]

    def to(self, peer: Peer) -> list[Request | Response]:
        return [
            parse_message(o.data)
            for o in self.outgoing
            if (o.destination.host, o.destination.port, o.destination.connection_id)
            == (peer.host, peer.port, peer.connection_id)
        ]

    def requests_to(self, peer: Peer, method: str | None = None) -> list[Request]:
        return [
            m
            for m in self.to(peer)
            if isinstance(m, Request) and (method is None or m.method == method)
        ]

    def responses_to(self, peer: Peer) -> list[Response]:
        return [m for m in self.to(peer) if isinstance(m, Response)]

    def raw_to(self, peer: Peer) -> bytes:
        return b"".join(
            o.data
            for o in self.outgoing
            if (o.destination.host, o.destination.port) == (peer.host, peer.port)
        )

    def one_request(self, peer: Peer, method: str) -> Request:
        found = self.requests_to(peer, method)
        assert len(found) == 1, f"expected one {method} to {peer}, got {self.to(peer)}"
        return found[0]

    def statuses_to(self, peer: Peer) -> list[int]:
        return [r.status for r in self.responses_to(peer)]


def header(message: Request | Response, name: str) -> str:
    value = message.get(name)
    assert value is not None, f"{name} missing in {message}"
    return value
