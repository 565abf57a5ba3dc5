"""Sans-IO SDP: a lossless model, typed views, codecs and filters, a writer from leg state.

- ``model``: ``parse_sdp`` and ``SessionDescription.to_bytes`` (RFC 8866), every line kept;
- ``attributes``: typed views (rtpmap, fmtp, fingerprint, candidate, crypto, ...) and the
  session/media level rules;
- ``codecs``: ``codecs_of`` a media section, whitelist/blacklist filters;
- ``writer``: ``write_sdp`` builds one leg's description from that leg's own state.

Bytes go in, values come out. Nothing in this package opens a socket, reads a clock, logs or
imports trio, and it imports nothing of rtcgw but itself (see ``rtcgw/__init__.py``).
"""

from rtcgw.sdp.attributes import (
    Candidate,
    Connection,
    Crypto,
    Direction,
    Fingerprint,
    Fmtp,
    Origin,
    RtcpFb,
    Rtpmap,
    Setup,
    bundle_groups,
    connection_of,
    direction_of,
    fingerprints_of,
    ice_credentials_of,
    rtcp_of,
    setup_of,
    strongest_fingerprint,
)
from rtcgw.sdp.codecs import (
    REPAIR_CODECS,
    STATIC_PAYLOAD_TYPES,
    Codec,
    codecs_of,
    filter_codecs,
    format_codecs,
    has_media_codec,
)
from rtcgw.sdp.errors import LocalSdpError, SdpError, SdpNegotiationError, SdpParseError
from rtcgw.sdp.model import Attribute, Entry, Line, MediaSection, SessionDescription, parse_sdp
from rtcgw.sdp.writer import (
    HOST_TYPE_PREFERENCE,
    LegProfile,
    LegState,
    StreamState,
    candidate_priority,
    write_sdp,
)

__all__ = [
    "HOST_TYPE_PREFERENCE",
    "REPAIR_CODECS",
    "STATIC_PAYLOAD_TYPES",
    "Attribute",
    "Candidate",
    "Codec",
    "Connection",
    "Crypto",
    "Direction",
    "Entry",
    "Fingerprint",
    "Fmtp",
    "LegProfile",
    "LegState",
    "Line",
    "LocalSdpError",
    "MediaSection",
    "Origin",
    "RtcpFb",
    "Rtpmap",
    "SdpError",
    "SdpNegotiationError",
    "SdpParseError",
    "SessionDescription",
    "Setup",
    "StreamState",
    "bundle_groups",
    "candidate_priority",
    "codecs_of",
    "connection_of",
    "direction_of",
    "filter_codecs",
    "fingerprints_of",
    "format_codecs",
    "has_media_codec",
    "ice_credentials_of",
    "parse_sdp",
    "rtcp_of",
    "setup_of",
    "strongest_fingerprint",
    "write_sdp",
]
