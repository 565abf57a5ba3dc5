"""Sans-IO registrations: the binding cache and REGISTER flood protection.

The supervisor owns the authoritative cache and each worker mirrors it from the change
events the supervisor pushes, so a call for a registered browser is retargeted with a local
read (DESIGN.md section 1). Nothing in this package opens a socket, reads a clock, logs or
imports trio: times are passed in as ``now`` (see ``rtcgw/__init__.py``).

The public names are listed below, e.g.
``from rtcgw.registrations import Binding, MemoryCache``.
"""

from rtcgw.registrations.binding import Binding, BindingKey, alias_user_for, binding_key
from rtcgw.registrations.cache import BindingEvent, Listener, MemoryCache, RegistrationCache
from rtcgw.registrations.flood import RateLimitConfigError, SourceRateLimiter

__all__ = [
    "Binding",
    "BindingEvent",
    "BindingKey",
    "Listener",
    "MemoryCache",
    "RateLimitConfigError",
    "RegistrationCache",
    "SourceRateLimiter",
    "alias_user_for",
    "binding_key",
]
