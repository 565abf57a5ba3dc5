"""What crosses from one leg to the other, and what each leg gets of its own.

A B2BUA is two user agents: nothing of a leg's transport or dialog state may reach the
other leg (topology hiding). Per message this module decides:

- which header lines are copied end to end (``copied_headers``): everything except the
  headers a leg owns (Via, Route, Record-Route, Contact, From, To, Call-ID, CSeq,
  Max-Forwards), the bodies' framing (Content-Length, Content-Type: set with the body),
  the option tags (rewritten per leg: ``option_tags``), the per-leg extensions (session
  timers, 100rel's RSeq/RAck), registrar-path headers (Path, Service-Route), and our
  identity (User-Agent, Server: replaced by ours);
- our Contact on a leg (``our_contact``): ``sip:rtcgw@host:port;transport=ws`` toward
  WebSocket clients (RFC 7118 section 5), plain toward the SIP side.

Rules: copied lines keep their original names and order (a B2BUA re-emits what it does
not understand, STYLE E4); Authorization, Proxy-Authorization, WWW-Authenticate and
Proxy-Authenticate are copied, so digest authentication passes through. No I/O.
"""

from __future__ import annotations

from typing import Final

from rtcgw.sip.message import Header, Request, Response
from rtcgw.sip.transport import Transport
from rtcgw.sip.uri import SipUri
from rtcgw.worker.b2bua.settings import LocalAddress

__all__ = [
    "LEG_OWNED_HEADERS",
    "STRIPPED_OPTION_TAGS",
    "copied_headers",
    "option_tags",
    "our_contact",
]

#: Lower-case long names of the headers never copied between legs.
LEG_OWNED_HEADERS: Final = frozenset(
    {
        "via",
        "route",
        "record-route",
        "contact",
        "from",
        "to",
        "call-id",
        "cseq",
        "max-forwards",
        "content-length",
        "content-type",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "session-expires",  # RFC 4028: per leg
        "min-se",
        "rseq",  # RFC 3262: per leg
        "rack",
        "path",  # RFC 3327: the client's flow, meaningless to the PBX
        "service-route",  # RFC 3608
        "user-agent",
        "server",
        "timestamp",
    }
)

#: Option tags never passed on: ``100rel`` (we do not relay reliable provisionals; see the
#: package docstring), ``timer`` (per leg, ``session_timer``), and the registration
#: extensions that name the client's own flow (``path``, ``outbound``, ``gruu``).
STRIPPED_OPTION_TAGS: Final = frozenset({"100rel", "timer", "path", "outbound", "gruu"})


def copied_headers(message: Request | Response) -> tuple[Header, ...]:
    """The header lines of ``message`` that the other leg's message carries unchanged."""
    return tuple(h for h in message.headers if h.key not in LEG_OWNED_HEADERS)


def option_tags(message: Request | Response, name: str) -> list[str]:
    """The option tags of ``name`` (Supported, Require) that may cross to the other leg,
    in their original order."""
    seen: list[str] = []
    for value in message.values(name):
        tag = value.strip()
        if tag and tag.lower() not in STRIPPED_OPTION_TAGS and tag not in seen:
            seen.append(tag)
    return seen


_TRANSPORT_PARAM: Final = {
    Transport.UDP: None,
    Transport.TCP: "tcp",
    Transport.TLS: "tls",
    Transport.WS: "ws",
    Transport.WSS: "ws",  # RFC 7118 section 5: "ws" for both WS and WSS
}


def our_contact(transport: Transport, local: LocalAddress, user: str = "rtcgw") -> SipUri:
    """Our Contact URI on a leg over ``transport``."""
    uri = SipUri(user=user, host=local.host, port=local.port)
    param = _TRANSPORT_PARAM[transport]
    return uri if param is None else uri.with_param("transport", param)
