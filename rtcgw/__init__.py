"""rtcgw: a SIP-WebRTC gateway.

rtcgw is a back-to-back user agent that lets web browsers (SIP over WebSocket, ICE,
DTLS-SRTP) call and be called by SIP and PSTN phones behind an unchanged PBX. It anchors
signaling and media and converts between the two stacks, as configured by realms, call
agents and A-/C-rules.

Layout rule (checked by tests/test_layers.py): the protocol layers ``rtcgw.sip``,
``rtcgw.sdp``, ``rtcgw.rules``, ``rtcgw.registrations``, ``rtcgw.media`` and the B2BUA
``rtcgw.worker.b2bua`` are sans-IO. They import neither trio
nor sockets nor anything from the runtime layers ``rtcgw.supervisor`` and ``rtcgw.worker``;
they take bytes, messages and the current time and return messages, actions and deadlines.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
