"""``examples/gateway.toml`` made runnable on loopback: the handbook's configuration as
written (realms, call agents, rules, actions), with only the deployment's addresses
changed: listeners on 127.0.0.1 port 0, the PBX at a sipp port on 127.0.0.1, the media
advertised on 127.0.0.1, the example's certificate pair by absolute path, and, where a
test scales time down, the throttling expiries."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE = EXAMPLES / "gateway.toml"

#: What each replaced line of the example looks like, and why it changes.
_DEPLOYMENT = (
    ('listen = "0.0.0.0:8443"', 'listen = "127.0.0.1:0"'),  # wss
    ('listen = "0.0.0.0:5060"', 'listen = "127.0.0.1:0"'),  # the PBX side
    ('listen = "127.0.0.1:9464"', 'listen = "127.0.0.1:0"'),  # /metrics
    ('advertised_addresses = ["203.0.113.10"]', 'advertised_addresses = ["127.0.0.1"]'),
    ('tls_certificate = "tls/example.crt"', f'tls_certificate = "{EXAMPLES}/tls/example.crt"'),
    ('tls_key = "tls/example.key"', f'tls_key = "{EXAMPLES}/tls/example.key"'),
    ('sources = ["192.0.2.10/32"]', 'sources = ["127.0.0.1/32"]'),
    ("workers = 0 ", "workers = 2 "),  # two shards even on a one-core machine
)


def handbook_config(
    directory: Path,
    pbx_port: int,
    *,
    client_expires_s: int | None = None,
    upstream_expires_s: int | None = None,
    register_limit: tuple[float, int] | None = None,
) -> Path:
    """Write the runnable copy of the example into ``directory``; returns its path.

    ``register_limit`` replaces the REGISTER flood limit: (rate per second, burst).
    """
    text = EXAMPLE.read_text(encoding="utf-8")
    if register_limit is not None:
        rate, burst = register_limit
        text = re.sub(r"register_rate_per_source = \S+", f"register_rate_per_source = {rate}", text)
        text = re.sub(
            r"register_burst_per_source = \S+", f"register_burst_per_source = {burst}", text
        )
    for old, new in _DEPLOYMENT:
        assert text.count(old) == 1, f"examples/gateway.toml no longer has {old!r}"
        text = text.replace(old, new)
    destination = 'destination = "sip:192.0.2.10:5060;transport=udp"'
    assert destination in text
    text = text.replace(destination, f'destination = "sip:127.0.0.1:{pbx_port};transport=udp"')
    if client_expires_s is not None or upstream_expires_s is not None:
        text, count = re.subn(
            r"client_expires_s = \d+, upstream_expires_s = \d+",
            f"client_expires_s = {client_expires_s or 60}, "
            f"upstream_expires_s = {upstream_expires_s or 3600}",
            text,
        )
        assert count == 1
    path = directory / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def client_tls() -> ssl.SSLContext:
    """What a browser needs to trust the example's certificate (issued to 127.0.0.1)."""
    return ssl.create_default_context(cafile=str(EXAMPLES / "tls" / "example.crt"))
