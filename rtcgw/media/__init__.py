"""Sans-IO media pieces: RFC 7983 demultiplexing, the ICE-lite responder, DTLS-SRTP,
SRTP contexts, RTP/RTCP rewriting and DTMF.

Nothing here opens a socket, reads a clock or starts a task: each object takes datagrams
and the current time and returns datagrams to send and deadlines. The worker's media relay
(``rtcgw.worker.media``) owns the sockets and drives these objects.
"""

__all__: list[str] = []
