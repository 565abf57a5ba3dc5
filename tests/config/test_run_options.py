"""``rtcgw run`` options applied to configuration tables, with and without a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtcgw.config import ConfigError, InterfaceKind, load_config_text
from rtcgw.config.run_options import RunOptions
from rtcgw.sip.transport import Transport


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "adhoc.crt", tmp_path / "adhoc.key"
    cert.write_text("cert", encoding="utf-8")
    key.write_text("key", encoding="utf-8")
    return cert, key


def test_pbx_alone_gives_wss_with_adhoc_certificate_and_sip_on_udp_and_tcp(
    tmp_path: Path,
) -> None:
    made: list[tuple[Path, Path]] = []

    def certificate() -> tuple[Path, Path]:
        made.append(_pair(tmp_path))
        return made[-1]

    options = RunOptions(pbx="192.0.2.10:5060")
    config = load_config_text("", source="command line", overrides=options.overrides(certificate))
    kinds = {(i.type, i.transport, str(i.listen)) for i in config.interfaces}
    assert kinds == {
        (InterfaceKind.WEBSOCKET, Transport.WSS, "0.0.0.0:8443"),
        (InterfaceKind.SIP, Transport.UDP, "0.0.0.0:5060"),
        (InterfaceKind.SIP, Transport.TCP, "0.0.0.0:5060"),
    }
    assert len(made) == 1
    wss = next(i for i in config.interfaces if i.transport is Transport.WSS)
    assert wss.tls_certificate == made[0][0]
    assert config.call_agent("pbx").destination is not None
    assert config.call_agent("pbx").interface == "sip_udp"


def test_ws_alone_needs_no_certificate() -> None:
    def certificate() -> tuple[Path, Path]:
        raise AssertionError("no wss interface, so no certificate may be generated")

    options = RunOptions(pbx="127.0.0.1:5080", ws="127.0.0.1:8080", sip="127.0.0.1:5070")
    config = load_config_text("", source="command line", overrides=options.overrides(certificate))
    assert {i.transport for i in config.interfaces} == {Transport.WS, Transport.UDP, Transport.TCP}
    assert all(str(i.listen).startswith("127.0.0.1:") for i in config.interfaces)


def test_options_override_a_file_and_keep_its_names(tmp_path: Path) -> None:
    cert, key = _pair(tmp_path)
    text = (
        '[interfaces.web]\ntype = "websocket"\nlisten = "0.0.0.0:8080"\n'
        '[interfaces.pbx_side]\ntype = "sip"\nlisten = "0.0.0.0:5060"\n'
        '[pbx]\naddress = "192.0.2.10"\n'
    )
    options = RunOptions(
        ws="127.0.0.1:9080",
        sip="127.0.0.1:5099",
        pbx="192.0.2.20:5062",
        workers=3,
        media_ip="127.0.0.1",
        advertised_ip="203.0.113.7",
    )
    config = load_config_text(
        text, source="gw.toml", base_dir=tmp_path, overrides=options.overrides(lambda: (cert, key))
    )
    assert str(config.interface("web").listen) == "127.0.0.1:9080"
    assert str(config.interface("pbx_side").listen) == "127.0.0.1:5099"
    assert [i.name for i in config.interfaces] == ["web", "pbx_side"]
    destination = config.call_agent("pbx").destination
    assert destination is not None and (destination.host, destination.port) == ("192.0.2.20", 5062)
    assert config.gateway.workers == 3
    (media,) = config.media
    assert str(media.bind_address) == "127.0.0.1"
    assert [str(a) for a in media.advertised_addresses] == ["203.0.113.7"]


def test_a_bad_option_value_is_reported_under_its_key() -> None:
    options = RunOptions(pbx="127.0.0.1:5060", ws="127.0.0.1:99999")
    with pytest.raises(ConfigError, match=r"interfaces\.ws\.listen"):
        load_config_text("", source="command line", overrides=options.overrides(_never))


def _never() -> tuple[Path, Path]:
    raise AssertionError("not needed")
