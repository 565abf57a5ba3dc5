"""The codecs of a media section, and the filters rules apply to them.

``codecs_of`` reads an RTP media section's formats with their ``a=rtpmap``, ``a=fmtp`` and
``a=rtcp-fb`` lines into ``Codec`` values; ``filter_codecs`` applies a whitelist or a
blacklist the way an operator means it: telephone-event and comfort noise are not codecs a
user picks, and repair formats (RTX, RED, FEC) follow the codec they protect.

No I/O. Codec values carry parameters verbatim; this module does not negotiate them (that is
RFC 3264 offer/answer, elsewhere).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from rtcgw.sdp.attributes import Fmtp, RtcpFb, Rtpmap, _parse_int
from rtcgw.sdp.errors import SdpParseError
from rtcgw.sdp.model import MediaSection

__all__ = [
    "REPAIR_CODECS",
    "STATIC_PAYLOAD_TYPES",
    "Codec",
    "codecs_of",
    "filter_codecs",
    "format_codecs",
    "has_media_codec",
]

#: RFC 3551 tables 4 and 5: payload type -> (encoding name, clock rate, channels). Video and
#: the formats whose channel count the table leaves to the text have None.
STATIC_PAYLOAD_TYPES: Mapping[int, tuple[str, int, int | None]] = MappingProxyType(
    {
        0: ("PCMU", 8000, 1),
        3: ("GSM", 8000, 1),
        4: ("G723", 8000, 1),
        5: ("DVI4", 8000, 1),
        6: ("DVI4", 16000, 1),
        7: ("LPC", 8000, 1),
        8: ("PCMA", 8000, 1),
        9: ("G722", 8000, 1),
        10: ("L16", 44100, 2),
        11: ("L16", 44100, 1),
        12: ("QCELP", 8000, 1),
        13: ("CN", 8000, 1),
        14: ("MPA", 90000, None),
        15: ("G728", 8000, 1),
        16: ("DVI4", 11025, 1),
        17: ("DVI4", 22050, 1),
        18: ("G729", 8000, 1),
        25: ("CelB", 90000, None),
        26: ("JPEG", 90000, None),
        28: ("nv", 90000, None),
        31: ("H261", 90000, None),
        32: ("MPV", 90000, None),
        33: ("MP2T", 90000, None),
        34: ("H263", 90000, None),
    }
)

#: Formats that carry no media of their own but repair another payload type: RTX (RFC 4588),
#: RED (RFC 2198), ULPFEC (RFC 5109), FlexFEC (RFC 8627; browsers name it flexfec-03).
REPAIR_CODECS = frozenset({"rtx", "red", "ulpfec", "flexfec", "flexfec-03"})
_PAYLOAD_TYPE_MAX = 127


@dataclass(frozen=True, slots=True)
class Codec:
    """One RTP payload format of a media section, as its lines describe it."""

    payload_type: int
    name: str
    clock_rate: int
    channels: int | None = None
    fmtp: str | None = None
    rtcp_fb: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, int, int]:
        """``(name in lower case, clock rate, channels or 1)``: the same codec on two legs."""
        return self.name.lower(), self.clock_rate, self.channels or 1

    @property
    def is_telephone_event(self) -> bool:
        """True for RFC 4733 DTMF events."""
        return self.name.lower() == "telephone-event"

    @property
    def is_comfort_noise(self) -> bool:
        """True for CN, RFC 3389 comfort noise."""
        return self.name.lower() == "cn"

    @property
    def is_repair(self) -> bool:
        """True for RTX, RED and FEC formats (``REPAIR_CODECS``)."""
        return self.name.lower() in REPAIR_CODECS

    @property
    def repairs(self) -> int | None:
        """For a repair format, the payload type it protects, else None.

        RTX and FlexFEC name it with ``apt=`` (RFC 4588 section 8.1); audio RED lists its
        redundant encodings as ``111/111`` (RFC 2198 section 5) and the first is taken.
        """
        if not self.is_repair or not self.fmtp:
            return None
        fmtp = Fmtp(0, self.fmtp)
        apt = fmtp.parameter("apt")
        if apt is None and self.name.lower() == "red":
            apt = self.fmtp.split("/", 1)[0].strip()
        if apt is None:
            return None
        try:
            return _parse_int(apt, "apt", self.fmtp, maximum=_PAYLOAD_TYPE_MAX)
        except SdpParseError:
            return None

    def __str__(self) -> str:
        channels = "" if self.channels in (None, 1) else f"/{self.channels}"
        return f"{self.name}/{self.clock_rate}{channels}"


def _by_payload_type(values: Sequence[str]) -> dict[str, list[str]]:
    """Attribute values grouped by their leading payload type token."""
    grouped: dict[str, list[str]] = {}
    for value in values:
        pt = value.split(maxsplit=1)[0] if value.strip() else ""
        grouped.setdefault(pt, []).append(value)
    return grouped


def codecs_of(section: MediaSection) -> tuple[Codec, ...]:
    """The codecs of an RTP media section, one per ``m=`` format, in the offered order.

    A static payload type without ``a=rtpmap`` is named from RFC 3551's table; a dynamic one
    without it is skipped (RFC 8866 section 6.6 requires the rtpmap), as are formats that are
    not payload types (``webrtc-datachannel``). The first ``a=fmtp`` of a payload type is
    taken; its ``a=rtcp-fb`` values and the ``*`` ones are gathered in order.

    Raises:
        SdpParseError: an rtpmap, fmtp or rtcp-fb line of a listed payload type is malformed
            (``line_no`` 0).
    """
    rtpmaps = _by_payload_type(section.values("rtpmap"))
    fmtps = _by_payload_type(section.values("fmtp"))
    feedback = [RtcpFb.from_sdp(v) for v in section.values("rtcp-fb")]
    codecs: list[Codec] = []
    for fmt in section.formats:
        try:
            pt = _parse_int(fmt, "payload type", fmt, maximum=_PAYLOAD_TYPE_MAX)
        except SdpParseError:
            continue
        if fmt in rtpmaps:
            rtpmap = Rtpmap.from_sdp(rtpmaps[fmt][0])
            name, clock_rate, channels = rtpmap.encoding, rtpmap.clock_rate, rtpmap.channels
        elif pt in STATIC_PAYLOAD_TYPES:
            name, clock_rate, channels = STATIC_PAYLOAD_TYPES[pt]
        else:
            continue
        fmtp = Fmtp.from_sdp(fmtps[fmt][0]).parameters if fmt in fmtps else None
        fb = tuple(f.value for f in feedback if f.payload_type in (fmt, "*"))
        codecs.append(Codec(pt, name, clock_rate, channels, fmtp, fb))
    return tuple(codecs)


def filter_codecs(
    codecs: Sequence[Codec],
    *,
    whitelist: Sequence[str] | None = None,
    blacklist: Sequence[str] | None = None,
) -> tuple[Codec, ...]:
    """The codecs a whitelist and a blacklist leave, in their order.

    Names compare case-blind. A whitelist keeps the codecs it names plus telephone-event
    and CN (they are not codecs a user chooses); a blacklist removes what it names,
    telephone-event and CN included. A repair format (RTX, RED, FEC) is kept only if the
    payload type it protects is kept, or, when it names none, if some media codec is kept;
    naming it in the blacklist removes it.
    """
    allowed = None if whitelist is None else {n.lower() for n in whitelist}
    denied = {n.lower() for n in blacklist or ()}

    def chosen(codec: Codec) -> bool:
        name = codec.name.lower()
        if name in denied:
            return False
        if codec.is_repair or allowed is None:
            return True
        return name in allowed or codec.is_telephone_event or codec.is_comfort_noise

    kept = [c for c in codecs if chosen(c)]
    media_pts = {c.payload_type for c in kept if not c.is_repair}
    has_media = any(not (c.is_repair or c.is_telephone_event or c.is_comfort_noise) for c in kept)
    # Repair formats may protect one another (RTX of RED): settle them to a fixed point.
    repair = [c for c in kept if c.is_repair]
    surviving = set(media_pts)
    changed = True
    while changed:
        changed = False
        for codec in repair:
            if codec.payload_type in surviving:
                continue
            target = codec.repairs
            if (target is None and has_media) or (target is not None and target in surviving):
                surviving.add(codec.payload_type)
                changed = True
    return tuple(c for c in kept if c.payload_type in surviving)


def has_media_codec(codecs: Sequence[Codec]) -> bool:
    """True if some codec carries media: not telephone-event, CN or a repair format."""
    return any(not (c.is_telephone_event or c.is_comfort_noise or c.is_repair) for c in codecs)


def format_codecs(codecs: Sequence[Codec]) -> str:
    """``opus/48000/2, PCMU/8000, telephone-event/8000``, for logs and errors."""
    return ", ".join(str(c) for c in codecs)
