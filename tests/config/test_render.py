"""``render_toml``: configuration tables -> TOML that reads back to the same tables."""

from __future__ import annotations

import dataclasses
import tomllib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtcgw.config import GatewaySettings, load_config_text
from rtcgw.config.render import HEADER, realm_tables, render_toml
from tests.config.config_snippets import MINIMAL

_keys = st.text(max_size=8)
_scalars = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.lists(st.text(max_size=6), max_size=3),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=3),
)
# What a rule holds: values, an inline table (`when`), an array of inline tables (`actions`).
_inline_tables = st.dictionaries(_keys, _scalars, max_size=3)
_rule_values = st.one_of(_scalars, _inline_tables, st.lists(_inline_tables, max_size=3))
_rules = st.lists(st.dictionaries(_keys, _rule_values, max_size=4), min_size=1, max_size=3)
_tables = st.recursive(
    st.dictionaries(_keys, st.one_of(_scalars, _rules), max_size=4),
    lambda children: st.dictionaries(_keys, st.one_of(_scalars, _rules, children), max_size=4),
    max_leaves=12,
)


@given(_tables)
def test_rendered_text_reads_back_to_the_same_tables(tables: dict[str, Any]) -> None:
    assert tomllib.loads(render_toml(tables)) == tables


def test_strings_and_keys_are_escaped() -> None:
    text = render_toml({"a key": 'quote " back \\ tab \t nl \n del \x7f nul \x00 é'})
    assert text == (
        f'{HEADER}\n"a key" = "quote \\" back \\\\ tab \\t nl \\n del \\u007f nul \\u0000 é"\n'
    )


def test_layout_of_tables_rules_and_actions() -> None:
    tables = {
        "gateway": {"workers": 2, "drain_timeout_s": 1.5},
        "realms": {
            "rtc": {
                "media": "m",
                "a_rules": [
                    {
                        "name": "r",
                        "when": {"method": ["INVITE", "MESSAGE"]},
                        "actions": [{"action": "force_srtp", "keying": "dtls"}],
                    }
                ],
            }
        },
        "empty": {},
    }
    assert render_toml(tables) == "\n".join(
        [
            HEADER,
            "",
            "[gateway]",
            "workers = 2",
            "drain_timeout_s = 1.5",
            "",
            "[realms.rtc]",
            'media = "m"',
            "",
            "[[realms.rtc.a_rules]]",
            'name = "r"',
            'when = { method = ["INVITE", "MESSAGE"] }',
            "actions = [",
            '  { action = "force_srtp", keying = "dtls" },',
            "]",
            "",
            "[empty]",
            "",
        ]
    )


@pytest.mark.parametrize("value", [float("nan"), object()])
def test_values_outside_the_subset_are_refused(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        render_toml({"x": value})


def test_realm_tables_read_back_to_the_realms(repo_root: Any) -> None:
    text = (repo_root / "examples" / "gateway.toml").read_text(encoding="utf-8")
    config = load_config_text(text, source="gateway.toml", base_dir=repo_root / "examples")
    raw = tomllib.loads(text)
    raw["realms"] = realm_tables(config.realms)
    again = load_config_text(render_toml(raw), source="again", base_dir=repo_root / "examples")
    assert again.realms == config.realms
    # The rest of the file ([gateway] with its REGISTER limits, listeners, media) too.
    assert dataclasses.replace(again, source=config.source) == config


@pytest.mark.parametrize(("rate", "burst"), [(20.0, 100), (0.0, 1), (0.25, 3), (100000.0, 1000000)])
def test_gateway_settings_read_back_from_rendered_text(rate: float, burst: int) -> None:
    raw = tomllib.loads(MINIMAL)
    raw["gateway"] = {
        "drain_timeout_s": 2.5,
        "register_rate_per_source": rate,
        "register_burst_per_source": burst,
    }
    text = render_toml(raw)
    assert f"register_burst_per_source = {burst}\n" in text
    gateway = load_config_text(text, source="again").gateway
    expected = GatewaySettings(
        drain_timeout_s=2.5, register_rate_per_source=rate, register_burst_per_source=burst
    )
    assert gateway == expected
