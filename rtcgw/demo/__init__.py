"""The demo SIP service that ``rtcgw demo`` runs on loopback in place of a PBX.

A registrar (digest; any user whose password is its name, or a given table), a stateless
proxy between registered users (it record-routes INVITEs, so a whole dialog passes it),
an echo extension (600) and a 440 Hz tone extension (601). The protocol logic
(``core``, ``registrar``, ``auth``, ``media``) is sans-IO; ``service`` is its trio edge and
``run`` starts it next to the gateway. ``rtcgw run`` never imports this package.
"""

from rtcgw.demo.auth import DigestAuth
from rtcgw.demo.core import ECHO_EXTENSION, TONE_EXTENSION, DemoCore
from rtcgw.demo.registrar import Binding, Registrar

__all__ = ["ECHO_EXTENSION", "TONE_EXTENSION", "Binding", "DemoCore", "DigestAuth", "Registrar"]
