"""Reusable pieces of the load benchmarks.

- ``gateway``: ``rtcgw run`` as a child process on the handbook's configuration.
- ``browsers``: the browser-side generator, a program of its own (SIP over WebSocket):
  calls held for a window, or churned at a rate (``churn``).
- ``sip_client``: the SIP-over-WebSocket client and the WebRTC offer both modes send.
- ``registrants``: N browsers that register, idle, then re-REGISTER (a program).
- ``webrtc_media``: the media pump: ICE checks (and answers), DTLS client, SRTP, paced
  G.711 probes, one-way delays.
- ``pbx``: the SIP-side program: a UDP registrar and answerer with an RTP echo.
- ``probe``: the payload both sides understand (phase, call, counter, send and echo times).
- ``delays``: percentiles of one-way delays and the tools' own floor.
- ``rtpengine``, ``ng_shim``, ``sip_uac``: rtpengine-daemon run on loopback and driven
  over its ng protocol in place of the gateway, with a UDP caller for the SIP side.
- ``children``: starting the programs and talking to them in JSON lines.
- ``procstat``: CPU time and RSS of a process and a description of the machine, from /proc.
- ``figures``: a relay run's figures as JSON and text.
"""
