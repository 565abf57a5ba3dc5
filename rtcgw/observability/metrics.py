"""Every Prometheus metric of rtcgw, declared once (STYLE.md E18).

Names start with ``rtcgw_``; every label takes values from a fixed set (a reason, a
direction, a status code), never a Call-ID, a user or an address.

Multiprocess mode (prometheus-client's, DESIGN.md section 1): the supervisor and its
workers each write their values to files in ``PROMETHEUS_MULTIPROC_DIR``, and the
supervisor's ``/metrics`` sums them (``registry()``). prometheus-client chooses file-backed
or in-memory values when it is first imported, so the variable must be set before that:

- ``rtcgw run`` first creates a fresh temporary directory and sets the variable to it
  (removing the directory when it exits); ``rtcgw.cli`` imports the supervisor runtime,
  which imports this module, only after that, inside the handler. ``rtcgw check-config``
  never imports it.
- Workers inherit the variable from the supervisor's environment.
- A process without the variable (unit tests importing modules directly) gets ordinary
  in-process metrics, and ``registry()`` is the default registry.

Gauges use ``livesum``: a live process's value counts, a dead worker's is dropped by
``worker_exited`` (``mark_process_dead``).
"""

from __future__ import annotations

import enum
import os
import re

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess

from rtcgw.observability.multiproc import MULTIPROC_ENV

__all__ = [
    "CALLS_ACTIVE",
    "CALLS_TOTAL",
    "CALL_SETUP_SECONDS",
    "CONFIG_RELOADS",
    "DRAINING",
    "DTLS_HANDSHAKES",
    "DTLS_HANDSHAKE_SECONDS",
    "DTMF_EVENTS",
    "ICE_NOMINATION_SECONDS",
    "ICE_REQUESTS",
    "MEDIA_BYTES",
    "MEDIA_DROPPED",
    "MEDIA_PACKETS",
    "MEDIA_SESSIONS_ACTIVE",
    "MULTIPROC_ENV",
    "OVERLOAD_REFUSALS",
    "POST_PICKUP_DELAY_SECONDS",
    "REGISTER_REQUESTS",
    "REGISTRATIONS_ACTIVE",
    "RULE_HITS",
    "SIP_MESSAGES",
    "SIP_MESSAGES_DROPPED",
    "SIP_REQUESTS_REJECTED",
    "SIP_STREAM_ERRORS",
    "WEBSOCKET_ACTIVE",
    "WEBSOCKET_CLOSED",
    "WORKERS_UP",
    "WORKER_CALLS_ACTIVE",
    "WORKER_RESTARTS",
    "DropReason",
    "RegisterOutcome",
    "StreamError",
    "WebSocketClose",
    "drop_reason_of",
    "multiprocess_dir",
    "observe_sip_message",
    "registry",
    "sip_labels_of",
    "worker_exited",
]


class DropReason(enum.Enum):
    """Why a SIP message was dropped without reaching the call logic."""

    OVERSIZE = "oversize"  #: a datagram over ``max_message_bytes`` (supervisor)
    NO_CALL_ID = "no_call_id"  #: no Call-ID to dispatch on (supervisor)
    WORKER_DOWN = "worker_down"  #: its worker was restarting or stopping (supervisor)
    UNPARSEABLE = "unparseable"  #: the worker could not parse it (400 sent if it could)
    INVALID = "invalid"  #: parsed, but broke a protocol rule (worker)
    STRAY = "stray"  #: an ACK or response matching no dialog or transaction (worker)
    OTHER = "other"  #: any other reason a worker gives


class RegisterOutcome(enum.Enum):
    """What became of a client's REGISTER."""

    FORWARDED = "forwarded"  #: sent on to the registrar (worker)
    ABSORBED = "absorbed"  #: a refresh answered from the registration cache (worker)
    REJECTED = "rejected"  #: refused by the gateway or the registrar (worker)
    RATE_LIMITED = "rate_limited"  #: over its source's flood limit: 503 (supervisor)


class WebSocketClose(enum.Enum):
    """How a WebSocket connection (or its handshake) ended."""

    NORMAL = "normal"  #: either side closed it
    BINARY_NOT_TEXT = "binary_not_text"  #: we closed with 1003: a binary frame not UTF-8
    TOO_BIG = "too_big"  #: we closed with 1009: a message over ``max_message_bytes``
    HANDSHAKE_REFUSED = "handshake_refused"  #: no ``sip`` subprotocol: HTTP 400
    BROKEN = "broken"  #: the transport failed (reset, TLS error)


class StreamError(enum.Enum):
    """Why a SIP TCP/TLS connection was ended by us."""

    FRAMING = "framing"  #: the stream could not be cut into SIP messages any more
    BROKEN = "broken"  #: the transport failed (reset, TLS error)


SIP_MESSAGES_DROPPED = Counter(
    "rtcgw_sip_messages_dropped",
    "SIP messages dropped without reaching the call logic, by reason",
    ["reason"],
)
SIP_REQUESTS_REJECTED = Counter(
    "rtcgw_sip_requests_rejected",
    "SIP requests the gateway answered itself with a failure status, by status code",
    ["status"],
)
WEBSOCKET_CLOSED = Counter(
    "rtcgw_websocket_connections_closed",
    "WebSocket connections (and refused handshakes) ended, by reason",
    ["reason"],
)
SIP_STREAM_ERRORS = Counter(
    "rtcgw_sip_stream_errors",
    "SIP TCP/TLS connections ended by an error, by reason",
    ["reason"],
)
WORKER_RESTARTS = Counter(
    "rtcgw_worker_restarts",
    "Worker processes restarted after they died or hung",
)
OVERLOAD_REFUSALS = Counter(
    "rtcgw_overload_refusals",
    "New INVITEs answered 503 by the supervisor because their worker was behind, by worker",
    ["worker"],
)
WORKERS_UP = Gauge(
    "rtcgw_workers_up",
    "Worker processes ready to take traffic",
    multiprocess_mode="livesum",
)
CALLS_ACTIVE = Gauge(
    "rtcgw_calls_active",
    "Calls in progress, by worker and conversion path (e.g. srtp<->rtp, sip: not anchored)",
    ["worker", "path"],
    multiprocess_mode="livesum",
)
WORKER_CALLS_ACTIVE = Gauge(
    "rtcgw_worker_calls_active",
    "Calls in progress on each worker (the sharding balance)",
    ["worker"],
    multiprocess_mode="livesum",
)
CALLS_TOTAL = Counter(
    "rtcgw_calls",
    "Calls ended, by who placed them and their result (answered, or the final status "
    "class such as 4xx, or cancelled/timeout/...)",
    ["direction", "result"],
)
#: Buckets for signalling and handshake latencies: from a LAN answer to a slow human pickup.
_SETUP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
_FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CALL_SETUP_SECONDS = Histogram(
    "rtcgw_call_setup_seconds",
    "Time from an initial INVITE to its final answer, by who placed the call",
    ["direction"],
    buckets=_SETUP_BUCKETS,
)
POST_PICKUP_DELAY_SECONDS = Histogram(
    "rtcgw_post_pickup_delay_seconds",
    "Time from the answer to the first media packet relayed toward a side (browser or sip)",
    ["toward"],
    buckets=_FAST_BUCKETS,
)
ICE_NOMINATION_SECONDS = Histogram(
    "rtcgw_ice_nomination_seconds",
    "Time from the answer to the browser's ICE nomination",
    buckets=_FAST_BUCKETS,
)
DTLS_HANDSHAKE_SECONDS = Histogram(
    "rtcgw_dtls_handshake_seconds",
    "Duration of successful DTLS handshakes, by our role (client or server)",
    ["role"],
    buckets=_FAST_BUCKETS,
)
SIP_MESSAGES = Counter(
    "rtcgw_sip_messages",
    "SIP messages parsed (in) and built (out) by the workers, by method and status class",
    ["direction", "method", "status_class"],
)
WEBSOCKET_ACTIVE = Gauge(
    "rtcgw_websocket_connections_active",
    "WebSocket connections open (handshake done)",
    multiprocess_mode="livesum",
)
CONFIG_RELOADS = Counter(
    "rtcgw_config_reloads",
    "Configuration reloads, by result (ok, failed, dry_run)",
    ["result"],
)
DRAINING = Gauge(
    "rtcgw_draining",
    "1 while the node or one of its workers drains, else 0",
    multiprocess_mode="livemax",
)
RULE_HITS = Counter(
    "rtcgw_rule_hits",
    "Rules that matched a request, by realm, kind (a_rule, c_rule, ...) and rule name",
    ["realm", "kind", "rule"],
)
REGISTER_REQUESTS = Counter(
    "rtcgw_register_requests",
    "REGISTER requests from clients, by what became of them",
    ["outcome"],
)
REGISTRATIONS_ACTIVE = Gauge(
    "rtcgw_registrations_active",
    "Client bindings in the registration cache (the supervisor's)",
    multiprocess_mode="livesum",
)

# The fixed label values show as 0 before their first event, so a rate() has a start.
for _reason in DropReason:
    SIP_MESSAGES_DROPPED.labels(_reason.value)
for _close in WebSocketClose:
    WEBSOCKET_CLOSED.labels(_close.value)
for _error in StreamError:
    SIP_STREAM_ERRORS.labels(_error.value)
for _outcome in RegisterOutcome:
    REGISTER_REQUESTS.labels(_outcome.value)
for _result in ("ok", "failed", "dry_run"):
    CONFIG_RELOADS.labels(_result)

#: SIP methods counted by name; any other (an extension) is counted as "other".
_SIP_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "INFO",
        "REFER",
        "MESSAGE",
        "UPDATE",
    }
)


_CSEQ = re.compile(rb"^(?:cseq)[ \t]*:[ \t]*\d+[ \t]+([A-Za-z]+)", re.IGNORECASE | re.MULTILINE)


def sip_labels_of(data: bytes) -> tuple[str, int | None] | None:
    """``(method, status or None)`` of a raw SIP message, read cheaply for counting (the
    method of a response from its CSeq); None when it does not look like SIP."""
    line_end = data.find(b"\r\n")
    first = data[: line_end if line_end >= 0 else 200]
    if first.startswith(b"SIP/2.0 "):
        status = first[8:11]
        found = _CSEQ.search(data, 0, 8192)
        if not status.isdigit() or found is None:
            return None
        return found.group(1).decode("ascii").upper(), int(status)
    method, _, rest = first.partition(b" ")
    if not method.isalpha() or not rest.endswith(b"SIP/2.0"):
        return None
    return method.decode("ascii").upper(), None


def observe_sip_message(direction: str, method: str, status: int | None) -> None:
    """Count one SIP message: ``direction`` in or out, ``status`` None for a request."""
    name = method if method in _SIP_METHODS else "other"
    status_class = "request" if status is None else f"{min(max(status // 100, 1), 6)}xx"
    SIP_MESSAGES.labels(direction, name, status_class).inc()


_WORKER_DROP_REASONS = {
    "unparseable": DropReason.UNPARSEABLE,
    "unparseable_request": DropReason.UNPARSEABLE,
    "invalid": DropReason.INVALID,
    "stray_ack": DropReason.STRAY,
    "stray_response": DropReason.STRAY,
}


# Media: the relay counts in plain ints per stream (a Prometheus increment per packet would
# cost a large share of the per-packet budget) and adds them here about once a second.
MEDIA_PACKETS = Counter(
    "rtcgw_media_packets_total",
    "RTP/RTCP packets relayed, by conversion path (srtp->rtp, rtp->srtp, srtcp->rtcp, ...)",
    ["path"],
)
MEDIA_BYTES = Counter(
    "rtcgw_media_bytes_total",
    "Bytes of RTP/RTCP received for relaying, by conversion path",
    ["path"],
)
MEDIA_DROPPED = Counter(
    "rtcgw_media_dropped_total",
    "Media packets dropped, by reason (srtp_auth, unvalidated_source, malformed, ...)",
    ["reason"],
)
ICE_REQUESTS = Counter(
    "rtcgw_ice_binding_requests_total",
    "STUN Binding requests on browser-side media sockets, by result",
    ["result"],
)
DTLS_HANDSHAKES = Counter(
    "rtcgw_dtls_handshakes_total",
    "DTLS handshakes finished, by result (ok, fingerprint_mismatch, failed) and our role",
    ["result", "role"],
)
MEDIA_SESSIONS_ACTIVE = Gauge(
    "rtcgw_media_sessions_active",
    "Calls whose media the worker relays",
    multiprocess_mode="livesum",
)
#: DTMF digits converted, by direction: info->rfc4733 (a browser's INFO sent as RFC 4733
#: toward the SIP side), rfc4733->info (the SIP side's RFC 4733 sent to a browser as INFO).
DTMF_EVENTS = Counter(
    "rtcgw_dtmf_events_total",
    "DTMF digits converted between SIP INFO and RFC 4733, by direction",
    ["direction"],
)
for _direction in ("info->rfc4733", "rfc4733->info"):
    DTMF_EVENTS.labels(_direction)


# Media drop reasons (the relay's ``Drop`` values) and the other fixed labels start at 0.
for _media_drop in (
    "unvalidated_source",
    "unexpected_source",
    "srtp_auth",
    "srtp_replay",
    "malformed",
    "not_ready",
    "no_stream",
    "no_session",
    "send_failed",
):
    MEDIA_DROPPED.labels(_media_drop)
for _toward in ("browser", "sip"):
    POST_PICKUP_DELAY_SECONDS.labels(_toward)
for _role in ("client", "server"):
    DTLS_HANDSHAKES.labels("ok", _role)
    DTLS_HANDSHAKES.labels("failed", _role)


def drop_reason_of(worker_reason: str) -> DropReason:
    """The bounded label for a B2BUA ``MessageDropped.reason``."""
    return _WORKER_DROP_REASONS.get(worker_reason, DropReason.OTHER)


def multiprocess_dir() -> str | None:
    """The multiprocess directory of this process, or None for in-process metrics."""
    return os.environ.get(MULTIPROC_ENV) or None


def registry() -> CollectorRegistry:
    """What ``/metrics`` serves: every process's values in multiprocess mode."""
    path = multiprocess_dir()
    if path is None:
        return REGISTRY
    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected, path=path)  # type: ignore[no-untyped-call]
    return collected


def worker_exited(pid: int) -> None:
    """Forget a dead worker's live gauges (its counters stay in the sums)."""
    path = multiprocess_dir()
    if path is not None:
        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
