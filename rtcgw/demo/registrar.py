"""The demo registrar's bindings: address-of-record user -> contacts; sans-IO."""

from __future__ import annotations

from dataclasses import dataclass

from rtcgw.demo.auth import DigestAuth
from rtcgw.sip import Header, NameAddr, Request, Response, SipUri, make_response

__all__ = ["MAX_EXPIRES_S", "Binding", "Registrar"]

MAX_EXPIRES_S = 3600


@dataclass(frozen=True, slots=True)
class Binding:
    """One registered contact of a user, valid until ``expires_at`` (service clock)."""

    contact: NameAddr
    expires_at: float

    @property
    def uri(self) -> SipUri | None:
        """The contact's SIP URI (None for another scheme, which we cannot reach)."""
        return self.contact.uri if isinstance(self.contact.uri, SipUri) else None


class Registrar:
    """Answers REGISTER (digest-authenticated) and keeps the bindings it grants."""

    def __init__(self, auth: DigestAuth) -> None:
        self.auth = auth
        self._bindings: dict[str, dict[str, Binding]] = {}

    def bindings(self, user: str, now: float) -> list[Binding]:
        """The unexpired bindings of ``user``, newest last."""
        table = self._bindings.get(user, {})
        for key in [k for k, b in table.items() if b.expires_at <= now]:
            del table[key]
        return list(table.values())

    def users(self, now: float) -> list[str]:
        """The users with at least one binding."""
        return sorted(u for u in list(self._bindings) if self.bindings(u, now))

    def handle(self, request: Request, now: float) -> Response:
        """The response to a REGISTER; the bindings change only when it is 200."""
        user = request.to.uri.user if isinstance(request.to.uri, SipUri) else None
        if not user:
            return make_response(request, 404, "No User In To")
        authenticated = self.auth.check(request.get("Authorization"), "REGISTER")
        if authenticated is None:
            return make_response(
                request,
                401,
                to_tag="demo",
                headers=(Header("WWW-Authenticate", self.auth.challenge(now)),),
            )
        if authenticated != user:
            return make_response(request, 403, "Credentials Of Another User", to_tag="demo")
        default = _int(request.get("Expires"), MAX_EXPIRES_S)
        table = self._bindings.setdefault(user, {})
        if request.contact_star:
            if default != 0:
                return make_response(request, 400, "Contact * Needs Expires 0", to_tag="demo")
            table.clear()
        for contact in request.contacts:
            expires = min(_int(contact.param("expires"), default), MAX_EXPIRES_S)
            key = str(contact.uri)
            if expires <= 0:
                table.pop(key, None)
            else:
                table[key] = Binding(contact.without_param("expires"), now + expires)
        current = self.bindings(user, now)
        headers = tuple(
            Header("Contact", str(b.contact.with_param("expires", str(int(b.expires_at - now)))))
            for b in current
        )
        return make_response(request, 200, to_tag="demo", headers=headers)


def _int(value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        return max(0, int(value.strip()))
    except ValueError:
        return default
