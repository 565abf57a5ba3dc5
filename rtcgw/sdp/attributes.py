"""Typed views of SDP lines and attribute values: parsed on demand, written back on demand.

The model (``rtcgw.sdp.model``) keeps every line as text; this module reads the ones the
gateway acts on. Each view has ``from_sdp(value)``, which takes the value as it follows
``a=name:`` (or ``c=``, ``o=``) and raises ``SdpParseError`` with ``line_no`` 0 when it is
malformed, and ``to_sdp()``, which gives the value back without the ``a=name:`` prefix.
``X.from_sdp(x.to_sdp()) == x`` holds for every view; ``from_sdp(text).to_sdp() == text``
holds where the view keeps the text whole (it does not for ``c=`` multicast suffixes,
fingerprint letter case or whitespace runs).

The ``*_of(section, session)`` helpers apply the level rules of the RFCs: a value at media
level wins over the session level, and a session-level value applies to every media section
that has none of its own (RFC 8866 section 5, RFC 3264 section 5.1, RFC 8122 section 5,
RFC 8839 section 5.4).

No I/O. Nothing here changes a description; writers build new ones (``rtcgw.sdp.writer``).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

from rtcgw.sdp.errors import SdpParseError, _show

if TYPE_CHECKING:
    from rtcgw.sdp.model import MediaSection, SessionDescription

__all__ = [
    "Candidate",
    "Connection",
    "Crypto",
    "Direction",
    "Fingerprint",
    "Fmtp",
    "Origin",
    "RtcpFb",
    "Rtpmap",
    "Setup",
    "bundle_groups",
    "connection_of",
    "direction_of",
    "fingerprints_of",
    "ice_credentials_of",
    "rtcp_of",
    "setup_of",
    "strongest_fingerprint",
]

_DIGITS = frozenset("0123456789")
_PORT_MAX = 65535
_PAYLOAD_TYPE_MAX = 127
_UINT32_MAX = 2**32 - 1
_HEX_PAIRS = re.compile(r"[0-9A-F]{2}(?::[0-9A-F]{2})*")
_BASE64_QUANTUM = 4


def _parse_int(token: str, what: str, value: str, *, maximum: int, minimum: int = 0) -> int:
    """``token`` as an ASCII decimal number in ``minimum..maximum``; ``value`` is shown on error.

    ``int()`` alone is not enough: it accepts "+5", " 5", "1_000" and non-ASCII digits, and a
    megabyte of digits costs quadratic time before any range check.
    """
    if (
        not token
        or len(token) > len(str(maximum))
        or not _DIGITS.issuperset(token)
        or not minimum <= int(token) <= maximum
    ):
        raise SdpParseError(
            0, value, f"{what} {_show(token)} is not a number from {minimum} to {maximum}"
        )
    return int(token)


def _fields(value: str, what: str, count: int) -> list[str]:
    """``value`` split on whitespace into exactly ``count`` fields."""
    fields = value.split()
    if len(fields) != count:
        raise SdpParseError(0, value, f"{what} needs {count} fields, found {len(fields)}")
    return fields


class Direction(enum.Enum):
    """The media direction attributes of RFC 3264 section 5.1 (also RFC 8866 section 6.7)."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @classmethod
    def from_sdp(cls, value: str) -> Direction:
        """The direction named by an attribute name such as ``sendonly``."""
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise SdpParseError(0, value, "not a media direction") from None

    def to_sdp(self) -> str:
        """The attribute name that states this direction."""
        return self.value

    def reverse(self) -> Direction:
        """The direction as the other side sees it: sendonly and recvonly swap."""
        return _REVERSED.get(self, self)


_REVERSED = {Direction.SENDONLY: Direction.RECVONLY, Direction.RECVONLY: Direction.SENDONLY}
_DIRECTION_NAMES = frozenset(d.value for d in Direction)


def _first_direction(attribute_names: Sequence[str]) -> Direction | None:
    for name in attribute_names:
        if name in _DIRECTION_NAMES:
            return Direction(name)
    return None


def direction_of(section: MediaSection, session: SessionDescription) -> Direction:
    """The direction of a media section: its own attribute, else the session's, else sendrecv.

    RFC 3264 section 5.1: "If the offerer wishes to both send and receive media on a stream,
    it SHOULD mark the stream as sendrecv ... [when no direction is given] the default is
    sendrecv", and a session-level attribute applies to every stream without its own.
    """
    found = _first_direction([a.name for a in section.attributes])
    if found is None:
        found = _first_direction([a.name for a in session.attributes])
    return Direction.SENDRECV if found is None else found


class Setup(enum.Enum):
    """The ``a=setup`` roles of RFC 4145 section 4, used by DTLS-SRTP (RFC 5763 section 5)."""

    ACTIVE = "active"
    PASSIVE = "passive"
    ACTPASS = "actpass"
    HOLDCONN = "holdconn"

    @classmethod
    def from_sdp(cls, value: str) -> Setup:
        """The role of an ``a=setup`` value."""
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise SdpParseError(0, value, "not a setup role") from None

    def to_sdp(self) -> str:
        """The ``a=setup`` value."""
        return self.value


def setup_of(section: MediaSection, session: SessionDescription) -> Setup | None:
    """The ``a=setup`` role at media level, else at session level, else None."""
    value = section.value("setup")
    if value is None:
        value = session.value("setup")
    return None if value is None else Setup.from_sdp(value)


@dataclass(frozen=True, slots=True)
class Connection:
    """A ``c=`` line: ``IN IP4 192.0.2.1`` (RFC 8866 section 5.7).

    A multicast TTL or address count (``/127``, ``/3``) is not kept: the gateway only
    relays unicast media.
    """

    net_type: str
    addr_type: str
    address: str

    @classmethod
    def from_sdp(cls, value: str) -> Connection:
        """Parse the value of a ``c=`` line."""
        net_type, addr_type, address = _fields(value, "c=", 3)
        address = address.split("/", 1)[0]
        if not address:
            raise SdpParseError(0, value, "c= has an empty address")
        return cls(net_type, addr_type, address)

    def to_sdp(self) -> str:
        """The value of a ``c=`` line."""
        return f"{self.net_type} {self.addr_type} {self.address}"

    @property
    def is_unspecified(self) -> bool:
        """True for ``0.0.0.0`` or ``::``, the old way of putting a call on hold (RFC 3264 8.4)."""
        return self.address in ("0.0.0.0", "::")


def connection_of(section: MediaSection, session: SessionDescription) -> Connection | None:
    """The ``c=`` line that applies to a media section: its own, else the session's."""
    own = section.connection
    return own if own is not None else session.connection


@dataclass(frozen=True, slots=True)
class Origin:
    """An ``o=`` line: ``- 4004467254 2 IN IP4 192.0.2.1`` (RFC 8866 section 5.2)."""

    username: str
    session_id: str
    session_version: str
    net_type: str
    addr_type: str
    address: str

    @classmethod
    def from_sdp(cls, value: str) -> Origin:
        """Parse the value of an ``o=`` line."""
        return cls(*_fields(value, "o=", 6))

    def to_sdp(self) -> str:
        """The value of an ``o=`` line."""
        return " ".join(
            (
                self.username,
                self.session_id,
                self.session_version,
                self.net_type,
                self.addr_type,
                self.address,
            )
        )


@dataclass(frozen=True, slots=True)
class Rtpmap:
    """``a=rtpmap:96 opus/48000/2`` (RFC 8866 section 6.6)."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    @classmethod
    def from_sdp(cls, value: str) -> Rtpmap:
        """Parse an ``a=rtpmap`` value."""
        pt, encoding = _fields(value, "rtpmap", 2)
        parts = encoding.split("/")
        if len(parts) not in (2, 3) or not parts[0]:
            raise SdpParseError(0, value, "rtpmap needs <encoding>/<clock rate>[/<channels>]")
        channels = None
        if len(parts) == 3:
            channels = _parse_int(parts[2], "channel count", value, minimum=1, maximum=255)
        return cls(
            payload_type=_parse_int(pt, "payload type", value, maximum=_PAYLOAD_TYPE_MAX),
            encoding=parts[0],
            clock_rate=_parse_int(parts[1], "clock rate", value, minimum=1, maximum=_UINT32_MAX),
            channels=channels,
        )

    def to_sdp(self) -> str:
        """The ``a=rtpmap`` value."""
        tail = "" if self.channels is None else f"/{self.channels}"
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{tail}"


@dataclass(frozen=True, slots=True)
class Fmtp:
    """``a=fmtp:96 minptime=10;useinbandfec=1``: parameters kept verbatim (RFC 8866 6.15)."""

    payload_type: int
    parameters: str

    @classmethod
    def from_sdp(cls, value: str) -> Fmtp:
        """Parse an ``a=fmtp`` value."""
        pt, *rest = value.split(maxsplit=1) or [""]
        return cls(
            payload_type=_parse_int(pt, "payload type", value, maximum=_PAYLOAD_TYPE_MAX),
            parameters=rest[0] if rest else "",
        )

    def to_sdp(self) -> str:
        """The ``a=fmtp`` value."""
        return (
            f"{self.payload_type} {self.parameters}" if self.parameters else str(self.payload_type)
        )

    def parameter(self, name: str) -> str | None:
        """The value of ``name=value`` among the ``;``-separated parameters (name case-blind)."""
        wanted = name.lower()
        for item in self.parameters.split(";"):
            key, sep, val = item.partition("=")
            if sep and key.strip().lower() == wanted:
                return val.strip()
        return None


@dataclass(frozen=True, slots=True)
class RtcpFb:
    """``a=rtcp-fb:96 nack pli`` or ``a=rtcp-fb:* transport-cc`` (RFC 4585 section 4.2)."""

    payload_type: str
    value: str

    @classmethod
    def from_sdp(cls, value: str) -> RtcpFb:
        """Parse an ``a=rtcp-fb`` value."""
        pt, *rest = value.split(maxsplit=1) or [""]
        feedback = rest[0] if rest else ""
        if pt != "*":
            _parse_int(pt, "payload type", value, maximum=_PAYLOAD_TYPE_MAX)
        if not feedback:
            raise SdpParseError(0, value, "rtcp-fb names no feedback type")
        return cls(pt, feedback)

    def to_sdp(self) -> str:
        """The ``a=rtcp-fb`` value."""
        return f"{self.payload_type} {self.value}"


#: Digest length in bytes of each hash function of RFC 8122 section 5's registry that we know.
_DIGEST_BYTES = MappingProxyType(
    {"md5": 16, "sha-1": 20, "sha-224": 28, "sha-256": 32, "sha-384": 48, "sha-512": 64}
)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """``a=fingerprint:sha-256 B7:47:...`` of a DTLS certificate (RFC 8122 section 5).

    ``from_sdp`` writes the algorithm in lower case and the hex digits in upper case, so
    fingerprints compare equal whatever case the peer used (the grammar is case-blind).
    """

    algorithm: str
    value: str

    #: Higher is stronger; used to pick the fingerprint to verify against (RFC 8122 5).
    STRENGTH: ClassVar[Mapping[str, int]] = MappingProxyType(
        {"md5": 0, "sha-1": 1, "sha-224": 2, "sha-256": 3, "sha-384": 4, "sha-512": 5}
    )

    @classmethod
    def from_sdp(cls, value: str) -> Fingerprint:
        """Parse an ``a=fingerprint`` value."""
        algorithm, digest = _fields(value, "fingerprint", 2)
        algorithm, digest = algorithm.lower(), digest.upper()
        if _HEX_PAIRS.fullmatch(digest) is None:
            raise SdpParseError(0, value, "fingerprint is not hex pairs separated by colons")
        expected = _DIGEST_BYTES.get(algorithm)
        size = (len(digest) + 1) // 3
        if expected is not None and size != expected:
            raise SdpParseError(
                0, value, f"a {algorithm} fingerprint has {expected} bytes, not {size}"
            )
        return cls(algorithm, digest)

    @classmethod
    def of_certificate(cls, der: bytes, algorithm: str = "sha-256") -> Fingerprint:
        """The fingerprint of a DER certificate with one of the hash functions we know."""
        digest = hashlib.new(_hashlib_name(algorithm), der).digest()
        return cls(algorithm, digest.hex(":").upper())

    def to_sdp(self) -> str:
        """The ``a=fingerprint`` value."""
        return f"{self.algorithm} {self.value}"

    def digest(self) -> bytes:
        """The fingerprint as bytes."""
        return bytes.fromhex(self.value.replace(":", ""))

    def matches(self, der: bytes) -> bool:
        """True if the DER certificate has this fingerprint (compared in constant time)."""
        digest = hashlib.new(_hashlib_name(self.algorithm), der).digest()
        return hmac.compare_digest(digest, self.digest())


def _hashlib_name(algorithm: str) -> str:
    name = algorithm.lower()
    if name not in _DIGEST_BYTES:
        raise SdpParseError(0, algorithm, "unknown fingerprint hash function")
    return name.replace("-", "")


def fingerprints_of(section: MediaSection, session: SessionDescription) -> tuple[Fingerprint, ...]:
    """Every ``a=fingerprint`` of the media section, or of the session when it has none.

    RFC 8122 section 5: a fingerprint at media level applies to that stream only, one at
    session level to every stream that has none of its own.
    """
    values = section.values("fingerprint") or session.values("fingerprint")
    return tuple(Fingerprint.from_sdp(v) for v in values)


#: md5 is never used to authenticate a peer, however it is offered: collisions are cheap
#: (RFC 6151), so a certificate matching an md5 fingerprint proves nothing.
_ACCEPTED_FOR_VERIFY = frozenset(Fingerprint.STRENGTH) - {"md5"}


def strongest_fingerprint(fps: Sequence[Fingerprint]) -> Fingerprint | None:
    """The fingerprint with the strongest hash function we verify; unknown ones are ignored.

    Browsers and aiortc send several (sha-256, sha-384, sha-512); the strongest one we can
    compute is the one to check the peer's certificate against. The first wins a tie.
    """
    best: Fingerprint | None = None
    for fp in fps:
        name = fp.algorithm.lower()
        if name not in _ACCEPTED_FOR_VERIFY:
            continue
        if (
            best is None
            or Fingerprint.STRENGTH[name] > Fingerprint.STRENGTH[best.algorithm.lower()]
        ):
            best = fp
    return best


def ice_credentials_of(
    section: MediaSection, session: SessionDescription
) -> tuple[str, str] | None:
    """``(ufrag, pwd)``: each taken from media level, else session level; None if one lacks.

    RFC 8839 section 5.4 allows both levels; browsers write them per m-line, sometimes
    after the candidates.
    """
    ufrag = section.value("ice-ufrag")
    if ufrag is None:
        ufrag = session.value("ice-ufrag")
    pwd = section.value("ice-pwd")
    if pwd is None:
        pwd = session.value("ice-pwd")
    if not ufrag or not pwd:
        return None
    return ufrag, pwd


_CANDIDATE_MIN_FIELDS = 8


@dataclass(frozen=True, slots=True)
class Candidate:
    """``a=candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host`` (RFC 8839 section 5.1).

    The optional extensions (``raddr``, ``rport``, ``tcptype``, ``generation``, ...) are
    kept as the tokens they were, in order.
    """

    foundation: str
    component: int
    transport: str
    priority: int
    address: str
    port: int
    type: str
    extras: tuple[str, ...] = ()

    @classmethod
    def from_sdp(cls, value: str) -> Candidate:
        """Parse an ``a=candidate`` value."""
        tokens = value.split()
        if len(tokens) < _CANDIDATE_MIN_FIELDS:
            raise SdpParseError(0, value, f"candidate needs {_CANDIDATE_MIN_FIELDS} fields")
        foundation, component, transport, priority, address, port, typ, ctype = tokens[:8]
        if typ != "typ":
            raise SdpParseError(0, value, "candidate lacks 'typ' before its type")
        return cls(
            foundation=foundation,
            component=_parse_int(component, "component", value, minimum=1, maximum=256),
            transport=transport,
            priority=_parse_int(priority, "priority", value, maximum=_UINT32_MAX),
            address=address,
            port=_parse_int(port, "port", value, maximum=_PORT_MAX),
            type=ctype,
            extras=tuple(tokens[8:]),
        )

    def to_sdp(self) -> str:
        """The ``a=candidate`` value."""
        return " ".join(
            (
                self.foundation,
                str(self.component),
                self.transport,
                str(self.priority),
                self.address,
                str(self.port),
                "typ",
                self.type,
                *self.extras,
            )
        )

    def extension(self, name: str) -> str | None:
        """The value following the extension token ``name`` (``raddr``, ``tcptype``, ...)."""
        for i in range(0, len(self.extras) - 1, 2):
            if self.extras[i] == name:
                return self.extras[i + 1]
        return None


@dataclass(frozen=True, slots=True)
class Crypto:
    """``a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<base64>|2^20|1:4`` (RFC 4568 9.1)."""

    tag: int
    suite: str
    key_params: str
    session_params: tuple[str, ...] = ()

    @classmethod
    def from_sdp(cls, value: str) -> Crypto:
        """Parse an ``a=crypto`` value."""
        tokens = value.split()
        if len(tokens) < 3:
            raise SdpParseError(0, value, "crypto needs a tag, a suite and key parameters")
        return cls(
            tag=_parse_int(tokens[0], "crypto tag", value, maximum=999_999_999),
            suite=tokens[1],
            key_params=tokens[2],
            session_params=tuple(tokens[3:]),
        )

    @classmethod
    def inline(cls, tag: int, suite: str, key_salt: bytes) -> Crypto:
        """A crypto attribute carrying ``key_salt`` inline, without lifetime or MKI."""
        return cls(tag, suite, "inline:" + base64.b64encode(key_salt).decode("ascii"))

    def to_sdp(self) -> str:
        """The ``a=crypto`` value."""
        return " ".join((str(self.tag), self.suite, self.key_params, *self.session_params))

    def key_salt(self) -> bytes:
        """The master key and salt of the first ``inline:`` key parameter, decoded.

        RFC 4568 section 9.2: ``inline:<key||salt base64>[|lifetime][|MKI:length]``; several
        key parameters are separated by ``;``. Missing base64 padding is tolerated.
        """
        for param in self.key_params.split(";"):
            method, sep, info = param.partition(":")
            if sep and method.lower() == "inline":
                encoded = info.split("|", 1)[0]
                encoded += "=" * (-len(encoded) % _BASE64_QUANTUM)
                try:
                    decoded = base64.b64decode(encoded, validate=True)
                except binascii.Error:
                    raise SdpParseError(0, self.key_params, "inline key is not base64") from None
                if not decoded:
                    raise SdpParseError(0, self.key_params, "inline key is empty")
                return decoded
        raise SdpParseError(0, self.key_params, "crypto has no inline key")


def bundle_groups(session: SessionDescription) -> tuple[tuple[str, ...], ...]:
    """The mids of each ``a=group:BUNDLE`` line, in order (RFC 8843 section 7)."""
    groups: list[tuple[str, ...]] = []
    for value in session.values("group"):
        tokens = value.split()
        if tokens and tokens[0].upper() == "BUNDLE":
            groups.append(tuple(tokens[1:]))
    return tuple(groups)


def rtcp_of(section: MediaSection) -> tuple[int, str | None] | None:
    """``a=rtcp:<port> [IN IP4 <address>]`` as ``(port, address or None)`` (RFC 3605)."""
    value = section.value("rtcp")
    if value is None:
        return None
    tokens = value.split()
    if len(tokens) not in (1, 4):
        raise SdpParseError(0, value, "rtcp needs a port, optionally with IN IP4 <address>")
    port = _parse_int(tokens[0], "rtcp port", value, maximum=_PORT_MAX)
    return port, tokens[3] if len(tokens) == 4 else None
