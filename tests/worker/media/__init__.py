"""Tests of the worker's media relay (rtcgw.worker.media) on loopback."""
