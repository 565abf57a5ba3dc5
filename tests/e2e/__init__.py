"""End-to-end tests: the web phone in headless Chromium against ``rtcgw run``."""
