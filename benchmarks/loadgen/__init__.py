"""Reusable pieces of the load benchmarks.

- ``gateway``: ``rtcgw run`` as a child process on the handbook's configuration.
- ``browsers``: the browser-side generator, a program of its own (SIP over WebSocket).
- ``webrtc_media``: its media pump: ICE checks, DTLS client, SRTP, paced G.711 probes.
- ``pbx``: the SIP-side program: a UDP registrar and answerer with an RTP echo.
- ``probe``: the payload both sides understand (phase, call, counter, send time).
- ``children``: starting the programs and talking to them in JSON lines.
- ``procstat``: CPU time of a process and a description of the machine, from /proc.
"""
