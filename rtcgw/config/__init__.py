"""rtcgw's configuration: a TOML file turned into one typed, immutable, checked snapshot.

Public surface::

    config = load_config(Path("gateway.toml"))   # raises ConfigError listing every problem
    print(summarize(config))

The model follows the ABC SBC handbook: interfaces, media interfaces, realms grouping call
agents, A-rules (requests from a realm's call agents) and C-rules (requests to them), and
the actions of ``actions.py``. ``load.py`` documents the file layout and the defaults;
``examples/gateway.toml`` and ``examples/minimal.toml`` show both.

This package reads one file (and checks that the TLS files it names exist); it opens no
socket, resolves no name, and keeps no global state: a snapshot is passed explicitly to
whoever needs it, and a reload builds a new one.
"""

from rtcgw.config.actions import (
    ACTION_TYPES,
    Action,
    CodecBlacklist,
    CodecWhitelist,
    DialogHandling,
    DtmfInfoToBrowser,
    ForceRtp,
    ForceSrtp,
    Mediate183To180,
    RegisterCaching,
    RegisterThrottling,
    Reply,
    RetargetFromCache,
    Route,
    RtpAnchoring,
    SrtpKeying,
    StripVideo,
)
from rtcgw.config.errors import ConfigError, ConfigProblem
from rtcgw.config.load import load_config, load_config_text
from rtcgw.config.schema import (
    AllSources,
    ARule,
    CallAgent,
    Conditions,
    CRule,
    Destination,
    DtlsKeyType,
    GatewayConfig,
    GatewaySettings,
    HostPort,
    HttpSettings,
    IceServer,
    Interface,
    InterfaceKind,
    IPAddress,
    IPNetwork,
    MediaInterface,
    PortRange,
    Realm,
    Rule,
    WebSettings,
)
from rtcgw.config.summary import summarize

__all__ = [
    "ACTION_TYPES",
    "ARule",
    "Action",
    "AllSources",
    "CRule",
    "CallAgent",
    "CodecBlacklist",
    "CodecWhitelist",
    "Conditions",
    "ConfigError",
    "ConfigProblem",
    "Destination",
    "DialogHandling",
    "DtlsKeyType",
    "DtmfInfoToBrowser",
    "ForceRtp",
    "ForceSrtp",
    "GatewayConfig",
    "GatewaySettings",
    "HostPort",
    "HttpSettings",
    "IPAddress",
    "IPNetwork",
    "IceServer",
    "Interface",
    "InterfaceKind",
    "MediaInterface",
    "Mediate183To180",
    "PortRange",
    "Realm",
    "RegisterCaching",
    "RegisterThrottling",
    "Reply",
    "RetargetFromCache",
    "Route",
    "RtpAnchoring",
    "Rule",
    "SrtpKeying",
    "StripVideo",
    "WebSettings",
    "load_config",
    "load_config_text",
    "summarize",
]
