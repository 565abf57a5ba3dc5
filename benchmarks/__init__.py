"""Benchmarks of rtcgw: load generators and the figures they print.

Nothing here is a test: each script starts a real gateway, drives it on loopback and prints
what it measured (packets, loss, round trips, CPU). ``benchmarks.loadgen`` holds the
reusable pieces: the gateway process, a browser-side load generator (SIP over WebSocket,
ICE, DTLS-SRTP) and a SIP-side answerer with an RTP echo.
"""
