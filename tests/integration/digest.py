"""HTTP digest credentials as a SIP user agent computes them (RFC 2617, RFC 7616 MD5).

A challenge (``WWW-Authenticate`` / ``Proxy-Authenticate``) is parsed into its parameters;
``credentials`` computes the ``response`` for a request method and digest ``uri`` and
returns the value of ``Authorization`` / ``Proxy-Authorization``. Only MD5 is needed here
(what sipp's ``verifyauth`` and most PBXs check); with ``qop=auth`` offered, the RFC 2617
form with ``cnonce`` and ``nc`` is used, otherwise the RFC 2069 compatible form.
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["credentials", "md5_response", "parse_challenge"]


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def parse_challenge(value: str) -> dict[str, str]:
    """The parameters of a ``Digest`` challenge, names lower-cased, quotes removed.

    Raises:
        ValueError: not a Digest challenge.
    """
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise ValueError(f"not a Digest challenge: {value!r}")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " ,\t":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        name = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            end = rest.index('"', i + 1)
            params[name] = rest[i + 1 : end]
            i = end + 1
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            params[name] = rest[i:end].strip()
            i = end
    return params


def md5_response(
    *,
    username: str,
    password: str,
    realm: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: str = "00000001",
    cnonce: str = "",
) -> str:
    """The digest ``response`` (RFC 2617 section 3.2.2.1, algorithm MD5)."""
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    if qop:
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _md5(f"{ha1}:{nonce}:{ha2}")


def credentials(challenge: str, *, method: str, uri: str, username: str, password: str) -> str:
    """The Authorization value answering ``challenge`` for ``method`` and ``uri``."""
    params = parse_challenge(challenge)
    algorithm = params.get("algorithm", "MD5")
    if algorithm.upper() != "MD5":
        raise ValueError(f"unsupported digest algorithm {algorithm}")
    realm, nonce = params["realm"], params["nonce"]
    offered = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
    qop = "auth" if "auth" in offered else None
    cnonce = secrets.token_hex(8) if qop else ""
    response = md5_response(
        username=username,
        password=password,
        realm=realm,
        nonce=nonce,
        method=method,
        uri=uri,
        qop=qop,
        cnonce=cnonce,
    )
    parts = [
        f'username="{username}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        f'response="{response}"',
        "algorithm=MD5",
    ]
    if qop:
        parts += [f"qop={qop}", "nc=00000001", f'cnonce="{cnonce}"']
    if "opaque" in params:
        parts.append(f'opaque="{params["opaque"]}"')
    return "Digest " + ", ".join(parts)
