"""The gateway's ICE-lite agent: it answers a browser's connectivity checks (RFC 8445).

The gateway is a lite agent (RFC 8445 section 2.5): it has only host candidates, never sends
checks and always takes the controlled role (section 6.1.1: "The full agent MUST take the
controlling role, and the lite agent MUST take the controlled role"). Its whole job on a
media socket is to answer Binding requests, and to learn from them which peer addresses are
validated (media may come from and go to them) and which one the peer selected.

Rules, in the order ``receive_untrusted`` applies them:

1. Anything but a Binding request (responses, indications, other methods, garbage) is
   ``IGNORED``; nothing is sent.
2. A request without USERNAME, MESSAGE-INTEGRITY or FINGERPRINT gets 400 (RFC 8489 section
   9.1.3 for the first two; RFC 8445 section 7 makes FINGERPRINT mandatory on checks).
3. A USERNAME other than "<local ufrag>:<remote ufrag>" (any remote part while the peer's
   ufrag is unknown), or a MESSAGE-INTEGRITY that does not verify with the local password,
   gets 401 (RFC 8489 section 9.1.3). A FINGERPRINT that does not verify never gets here:
   the message is not STUN then (rule 1).
4. A peer that claims ICE-CONTROLLED gets 487 Role Conflict (RFC 8445 section 7.3.1.1): a
   lite agent cannot switch to controlling, so it always acts as the agent with the
   smaller tie-breaker.
5. Otherwise the check is valid: the source address is validated (and its consent
   refreshed, RFC 7675), a success response with XOR-MAPPED-ADDRESS = source goes back,
   signed with the local password; with USE-CANDIDATE the source also becomes the selected
   address. Aggressive nomination (every check nominates) and regular nomination (a later
   check nominates, RFC 8445 section 8.1.1) both work; the latest nomination wins, which
   also follows a browser that renominates after a network change.

Error responses to failed credential checks carry no MESSAGE-INTEGRITY (RFC 8489 section
9.1.3); every response carries FINGERPRINT.

An ICE restart (RFC 8445 section 9) swaps both credentials: from then on checks with the old
ones get 401, addresses validated under them are forgotten, except the selected address,
which keeps carrying media until a check with the new credentials nominates.

The agent never reads a clock and never sends: ``receive_untrusted`` takes ``now`` and
returns the datagram to send back. ``is_validated`` is on the relay's per-packet path: one
dict lookup.
"""

from __future__ import annotations

import enum
import re
import secrets
import string
from dataclasses import dataclass
from typing import Final, final

from rtcgw.media.errors import LocalMediaError, RemoteMediaError
from rtcgw.media.stun import (
    binding_error,
    binding_success,
    parse_binding_request_untrusted,
    verify_integrity,
)

__all__ = ["IceCredentials", "IceLiteAgent", "IceResult", "IceVerdict"]

#: RFC 8839 section 5.4: ice-char = ALPHA / DIGIT / "+" / "/".
ICE_CHARS: Final = string.ascii_letters + string.digits + "+/"
_ICE_STRING = re.compile(r"[A-Za-z0-9+/]{1,256}")
_UFRAG_LENGTH: Final = 8  # RFC 8839 section 5.4: at least 4 characters, 24 bits of randomness
_PWD_LENGTH: Final = 24  # at least 22 characters, 128 bits of randomness; 24 give 144 bits

#: Validated addresses kept per agent. A browser checks from a handful of candidates; the
#: cap only bounds what an authenticated but misbehaving peer can make us remember.
MAX_VALIDATED_ADDRESSES: Final = 64


def _credentials_problem(ufrag: str, pwd: str) -> str | None:
    # RFC 8839 section 5.4 sets minimum lengths (4 and 22) for the generator's sake; a
    # shorter value from a peer harms only its own security, so only the character set and
    # the maximum are enforced. ":" in particular would make USERNAME ambiguous.
    if not _ICE_STRING.fullmatch(ufrag):
        return f"ice-ufrag must be 1..256 ice-chars (ALPHA / DIGIT / '+' / '/'): {ufrag[:40]!r}"
    if not _ICE_STRING.fullmatch(pwd):
        return f"ice-pwd must be 1..256 ice-chars (ALPHA / DIGIT / '+' / '/'), got {len(pwd)}"
    return None


@dataclass(frozen=True, slots=True)
class IceCredentials:
    """One side's ICE username fragment and password (a=ice-ufrag / a=ice-pwd, RFC 8839).

    Raises:
        LocalMediaError: ``ufrag`` or ``pwd`` is empty, longer than 256 characters or not
            made of ice-chars. Use ``from_sdp_untrusted`` for a peer's values.
    """

    ufrag: str
    pwd: str

    def __post_init__(self) -> None:
        problem = _credentials_problem(self.ufrag, self.pwd)
        if problem is not None:
            raise LocalMediaError(problem)

    @classmethod
    def generate(cls) -> IceCredentials:
        """Fresh random credentials: an 8-character ufrag and a 24-character password."""
        return cls(
            ufrag="".join(secrets.choice(ICE_CHARS) for _ in range(_UFRAG_LENGTH)),
            pwd="".join(secrets.choice(ICE_CHARS) for _ in range(_PWD_LENGTH)),
        )

    @classmethod
    def from_sdp_untrusted(cls, ufrag: str, pwd: str) -> IceCredentials:
        """A peer's credentials as its SDP gave them.

        Raises:
            RemoteMediaError: a value is empty, longer than 256 characters or not made of
                ice-chars.
        """
        problem = _credentials_problem(ufrag, pwd)
        if problem is not None:
            raise RemoteMediaError(problem)
        return cls(ufrag=ufrag, pwd=pwd)

    def __repr__(self) -> str:
        # The password is a secret: keep it out of logs and tracebacks.
        return f"IceCredentials(ufrag={self.ufrag!r}, pwd=<{len(self.pwd)} chars>)"


class IceVerdict(enum.Enum):
    """What the agent made of one received datagram."""

    #: A valid check: a success response is to be sent, the source address is validated.
    ANSWERED = "answered"
    #: A valid check with USE-CANDIDATE: validated, and now the selected address.
    NOMINATED = "nominated"
    #: USERNAME not ours or MESSAGE-INTEGRITY failed: 401 Unauthorized, unsigned
    #: (RFC 8489 section 9.1.3).
    BAD_CREDENTIALS = "bad-credentials"
    #: A Binding request without MESSAGE-INTEGRITY, FINGERPRINT or USERNAME: 400 Bad Request.
    BAD_REQUEST = "bad-request"
    #: The peer claims ICE-CONTROLLED too: 487 Role Conflict, signed (RFC 8445 section
    #: 7.3.1.1; a lite agent is always controlled).
    ROLE_CONFLICT = "role-conflict"
    #: Not a Binding request (indication, response, other method, garbage): nothing to send.
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class IceResult:
    """The verdict on one datagram and the datagram to send back to its source, if any."""

    verdict: IceVerdict
    reply: bytes | None


_IGNORED: Final = IceResult(IceVerdict.IGNORED, None)


@final
class IceLiteAgent:
    """The ICE-lite responder of one browser-facing media socket (one BUNDLE group).

    Args:
        local: our credentials, as put in our SDP.
        remote: the peer's credentials once its SDP is known; until then any remote ufrag
            in USERNAME is accepted (checks may arrive before the peer's answer does).
        consent_timeout_s: how long the selected address keeps consent without a valid
            check (RFC 7675 section 5.1: 30 seconds).

    Counters (plain ints, for metrics): ``answered`` valid checks, ``bad_credentials``
    401s, ``bad_requests`` 400s, ``role_conflicts`` 487s.
    """

    __slots__ = (
        "_expected_username",
        "_first_check_at",
        "_key",
        "_local",
        "_nominated_at",
        "_remote",
        "_selected",
        "_username_prefix",
        "_validated",
        "answered",
        "bad_credentials",
        "bad_requests",
        "consent_timeout_s",
        "role_conflicts",
    )

    def __init__(
        self,
        local: IceCredentials,
        remote: IceCredentials | None = None,
        *,
        consent_timeout_s: float = 30.0,
    ) -> None:
        if not consent_timeout_s > 0:
            raise LocalMediaError(f"consent_timeout_s must be positive: {consent_timeout_s}")
        self.consent_timeout_s = consent_timeout_s
        self._local = local
        self._remote = remote
        self._key = b""
        self._username_prefix = ""
        self._expected_username: str | None = None
        self._use_credentials(local, remote)
        self._selected: tuple[str, int] | None = None
        self._first_check_at: float | None = None
        self._nominated_at: float | None = None
        # Validated address -> time of its latest valid check (its consent, RFC 7675).
        self._validated: dict[tuple[str, int], float] = {}
        self.answered = 0
        self.bad_credentials = 0
        self.bad_requests = 0
        self.role_conflicts = 0

    def _use_credentials(self, local: IceCredentials, remote: IceCredentials | None) -> None:
        self._local = local
        self._remote = remote
        # RFC 8489 section 9.1.1: the short-term key is the password (OpaqueString, which
        # leaves ASCII ice-chars unchanged).
        self._key = local.pwd.encode("ascii")
        # RFC 8445 section 7.2.2: USERNAME is "RFRAG:LFRAG", the receiver's ufrag first.
        self._username_prefix = local.ufrag + ":"
        self._expected_username = None if remote is None else self._username_prefix + remote.ufrag

    @property
    def local(self) -> IceCredentials:
        """Our credentials."""
        return self._local

    @property
    def remote(self) -> IceCredentials | None:
        """The peer's credentials, once its SDP is known."""
        return self._remote

    @property
    def selected(self) -> tuple[str, int] | None:
        """The address the peer nominated last: media to the peer goes there."""
        return self._selected

    @property
    def first_check_at(self) -> float | None:
        """When the first valid check arrived (kept across ICE restarts)."""
        return self._first_check_at

    @property
    def nominated_at(self) -> float | None:
        """When the first nomination arrived (kept across ICE restarts)."""
        return self._nominated_at

    def set_remote(self, remote: IceCredentials) -> None:
        """Take the peer's credentials from its SDP: checks must now name its ufrag."""
        self._use_credentials(self._local, remote)

    def restart(self, local: IceCredentials, remote: IceCredentials | None) -> None:
        """Start over with new credentials (ICE restart, RFC 8445 section 9).

        Checks with the old credentials are refused (401) from now on. The selected address
        stays selected and validated, so media keeps flowing, until a check with the new
        credentials nominates; other addresses must be validated again.
        """
        if local == self._local:
            # RFC 8445 section 9: a restart changes both the ufrag and the password.
            raise LocalMediaError(f"ICE restart with unchanged local credentials {local!r}")
        self._use_credentials(local, remote)
        selected = self._selected
        self._validated = {} if selected is None else {selected: self._validated[selected]}

    def receive_untrusted(self, data: bytes, source: tuple[str, int], now: float) -> IceResult:
        """Handle one datagram classified as STUN, from ``source`` at time ``now``.

        Returns the verdict and the reply to send to ``source`` (None for ``IGNORED``).
        Never raises on the content of ``data``.
        """
        request = parse_binding_request_untrusted(data)
        if request is None:
            return _IGNORED
        transaction_id = request.transaction_id
        username = request.username
        if username is None or not request.has_integrity or not request.has_fingerprint:
            self.bad_requests += 1
            return IceResult(
                IceVerdict.BAD_REQUEST, binding_error(transaction_id, 400, "Bad Request", None)
            )
        expected = self._expected_username
        username_ok = (
            username.startswith(self._username_prefix) if expected is None else username == expected
        )
        if not username_ok or not verify_integrity(data, self._key):
            self.bad_credentials += 1
            return IceResult(
                IceVerdict.BAD_CREDENTIALS,
                binding_error(transaction_id, 401, "Unauthorized", None),
            )
        if request.ice_controlled is not None:
            self.role_conflicts += 1
            return IceResult(
                IceVerdict.ROLE_CONFLICT,
                binding_error(transaction_id, 487, "Role Conflict", self._key),
            )
        self._validate(source, now)
        self.answered += 1
        if self._first_check_at is None:
            self._first_check_at = now
        verdict = IceVerdict.ANSWERED
        if request.use_candidate:
            # RFC 8445 section 7.3.1.5: a valid check with USE-CANDIDATE nominates the pair.
            verdict = IceVerdict.NOMINATED
            self._selected = source
            if self._nominated_at is None:
                self._nominated_at = now
        return IceResult(verdict, binding_success(transaction_id, source, self._key))

    def _validate(self, address: tuple[str, int], now: float) -> None:
        validated = self._validated
        if address not in validated and len(validated) >= MAX_VALIDATED_ADDRESSES:
            # Forget the address whose consent is oldest; never the selected one.
            stale = min((a for a in validated if a != self._selected), key=validated.__getitem__)
            del validated[stale]
        validated[address] = now

    def is_validated(self, address: tuple[str, int]) -> bool:
        """Whether a valid check came from ``address`` (media from it may be accepted)."""
        return address in self._validated

    def consent_deadline(self) -> float | None:
        """When consent to send to the selected address expires unless a check comes first."""
        selected = self._selected
        if selected is None:
            return None
        return self._validated[selected] + self.consent_timeout_s

    def consent_expired(self, now: float) -> bool:
        """Whether the selected address went ``consent_timeout_s`` without a valid check.

        RFC 7675 section 5.1: media must stop when consent expires. False while nothing is
        selected.
        """
        deadline = self.consent_deadline()
        return deadline is not None and now >= deadline
