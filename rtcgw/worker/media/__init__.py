"""The worker's media relay: sockets, the batch-drain loop, and one media session per call.

The protocol pieces (ICE-lite, DTLS, SRTP, RTP rewriting) are sans-IO in ``rtcgw.media``;
SDP reading and writing in ``rtcgw.sdp``. This package owns the UDP sockets of the worker's
slice of the media port range and moves packets between them (DESIGN.md section 1: no trio
call per packet; one task waits for readiness across every media socket and drains the
ready ones with plain non-blocking socket calls).
"""

__all__: list[str] = []
