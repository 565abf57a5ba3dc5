"""The B2BUA core of a worker: sans-IO calls between WebSocket clients and the SIP side.

``B2bua`` takes bytes, connection news and the time, and returns the messages to send and
notices for logs and metrics (``Output``). Each call has two legs with their own
Call-ID, tags, CSeq, Via and Contact (topology hiding: the SIP side never sees a client's
Via, Contact or ``.invalid`` host; a client never sees the PBX's Vias or Record-Routes).
Every out-of-dialog request is routed by the configuration's rules (``routing``): to a
call agent's next hop, or, retargeted from the registration cache, to a client's
connection. REGISTERs from clients are cached and throttled, and relayed upstream with an
alias Contact (``register``).

100rel (RFC 3262), the choice: rtcgw never relays reliable provisional responses. JsSIP
and SIP.js do not do 100rel, so ``100rel`` is removed from Supported and Require toward
both sides (``relay.STRIPPED_OPTION_TAGS``): a PBX then sends unreliable 18x, which both
clients apply (JsSIP applies SDP from an unreliable 183). A peer that sends a reliable
provisional anyway gets its PRACK from us on that leg, and the 18x is relayed unreliably;
an INVITE that *requires* 100rel is answered 420 with ``Unsupported: 100rel``.

Session timers (RFC 4028) run per leg (``session_timer``); the SDP goes through one seam
(``seam.SdpSeam``). Out-of-dialog MESSAGE is relayed both ways (``message``). Not done
yet: out-of-dialog SUBSCRIBE (405), 3xx recursion (relayed as is), 422 retries.
"""

from rtcgw.sip.events import Outgoing
from rtcgw.sip.timers import TimerConfig
from rtcgw.worker.b2bua.core import B2bua
from rtcgw.worker.b2bua.events import (
    BindingReported,
    CallAnswered,
    CallDirection,
    CallEnded,
    CallStarted,
    EndReason,
    MediaRefused,
    MessageDropped,
    Notice,
    Output,
    RegisterHandled,
    RegisterOutcome,
    RequestRejected,
    RouteDecided,
    RouteOutcome,
)
from rtcgw.worker.b2bua.seam import LegSide, PassThroughSdp, SdpSeam
from rtcgw.worker.b2bua.settings import B2buaSettings, LocalAddress

__all__ = [
    "B2bua",
    "B2buaSettings",
    "BindingReported",
    "CallAnswered",
    "CallDirection",
    "CallEnded",
    "CallStarted",
    "EndReason",
    "LegSide",
    "LocalAddress",
    "MediaRefused",
    "MessageDropped",
    "Notice",
    "Outgoing",
    "Output",
    "PassThroughSdp",
    "RegisterHandled",
    "RegisterOutcome",
    "RequestRejected",
    "RouteDecided",
    "RouteOutcome",
    "SdpSeam",
    "TimerConfig",
]
