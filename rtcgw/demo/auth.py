"""HTTP digest (RFC 2617, MD5, qop=auth) as a SIP registrar checks it; sans-IO."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

__all__ = ["DigestAuth", "parse_digest"]

_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]+)\s*,?')


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def parse_digest(value: str) -> dict[str, str] | None:
    """The parameters of a ``Digest`` Authorization value (names lower-case), or None."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        raw = match.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[match.group(1).lower()] = raw
    return params


class DigestAuth:
    """Challenges and checks credentials: a user's password is the ``users`` table's entry,
    else (when ``password_is_user``) the user name itself."""

    def __init__(
        self,
        realm: str,
        secret: bytes,
        *,
        users: Mapping[str, str] | None = None,
        password_is_user: bool = True,
    ) -> None:
        self.realm = realm
        self._secret = secret
        self._users = dict(users or {})
        self._password_is_user = password_is_user

    def password(self, user: str) -> str | None:
        """The password of ``user``, or None for a user who may not register."""
        if user in self._users:
            return self._users[user]
        return user if self._password_is_user else None

    def nonce(self, now: float) -> str:
        """A nonce this instance can recognise later without keeping state."""
        stamp = f"{int(now):x}"
        mac = hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:16]
        return f"{stamp}.{mac}"

    def challenge(self, now: float) -> str:
        """A ``WWW-Authenticate`` value."""
        return f'Digest realm="{self.realm}", nonce="{self.nonce(now)}", algorithm=MD5, qop="auth"'

    def _nonce_ok(self, nonce: str) -> bool:
        stamp, _, mac = nonce.partition(".")
        good = hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:16]
        return hmac.compare_digest(mac, good)

    def check(self, authorization: str | None, method: str) -> str | None:
        """The authenticated user name, or None when the credentials are absent or wrong."""
        if authorization is None:
            return None
        params = parse_digest(authorization)
        if params is None:
            return None
        user, nonce, uri = params.get("username"), params.get("nonce"), params.get("uri")
        if user is None or nonce is None or uri is None or params.get("realm") != self.realm:
            return None
        if params.get("algorithm", "MD5").upper() != "MD5" or not self._nonce_ok(nonce):
            return None
        password = self.password(user)
        if password is None:
            return None
        ha1 = _md5(f"{user}:{self.realm}:{password}")
        ha2 = _md5(f"{method}:{uri}")
        qop = params.get("qop")
        if qop is None:
            expected = _md5(f"{ha1}:{nonce}:{ha2}")
        elif qop == "auth":
            nc, cnonce = params.get("nc", ""), params.get("cnonce", "")
            expected = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
        else:
            return None
        return user if hmac.compare_digest(expected, params.get("response", "")) else None
