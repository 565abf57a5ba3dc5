"""SIP status codes and their default reason phrases (RFC 3261 section 21 and later RFCs)."""

from __future__ import annotations

import enum

__all__ = ["StatusCode", "reason_phrase"]


class StatusCode(enum.IntEnum):
    """The status codes rtcgw sends or acts on; others pass through as plain ints."""

    TRYING = 100  #: RFC 3261 21.1.1
    RINGING = 180  #: RFC 3261 21.1.2
    CALL_IS_BEING_FORWARDED = 181  #: RFC 3261 21.1.3
    QUEUED = 182  #: RFC 3261 21.1.4
    SESSION_PROGRESS = 183  #: RFC 3261 21.1.5
    OK = 200  #: RFC 3261 21.2.1
    ACCEPTED = 202  #: RFC 3265 / RFC 6665
    MOVED_TEMPORARILY = 302  #: RFC 3261 21.3.3
    BAD_REQUEST = 400  #: RFC 3261 21.4.1
    UNAUTHORIZED = 401  #: RFC 3261 21.4.2
    FORBIDDEN = 403  #: RFC 3261 21.4.4
    NOT_FOUND = 404  #: RFC 3261 21.4.5
    METHOD_NOT_ALLOWED = 405  #: RFC 3261 21.4.6
    PROXY_AUTHENTICATION_REQUIRED = 407  #: RFC 3261 21.4.8
    REQUEST_TIMEOUT = 408  #: RFC 3261 21.4.9
    REQUEST_ENTITY_TOO_LARGE = 413  #: RFC 3261 21.4.11
    UNSUPPORTED_URI_SCHEME = 416  #: RFC 3261 21.4.14
    BAD_EXTENSION = 420  #: RFC 3261 21.4.15
    EXTENSION_REQUIRED = 421  #: RFC 3261 21.4.16
    SESSION_INTERVAL_TOO_SMALL = 422  #: RFC 4028 section 6
    INTERVAL_TOO_BRIEF = 423  #: RFC 3261 21.4.17
    TEMPORARILY_UNAVAILABLE = 480  #: RFC 3261 21.4.18
    CALL_DOES_NOT_EXIST = 481  #: RFC 3261 21.4.19
    LOOP_DETECTED = 482  #: RFC 3261 21.4.20
    TOO_MANY_HOPS = 483  #: RFC 3261 21.4.21
    ADDRESS_INCOMPLETE = 484  #: RFC 3261 21.4.22
    BUSY_HERE = 486  #: RFC 3261 21.4.24
    REQUEST_TERMINATED = 487  #: RFC 3261 21.4.25
    NOT_ACCEPTABLE_HERE = 488  #: RFC 3261 21.4.26
    REQUEST_PENDING = 491  #: RFC 3261 21.4.27
    SERVER_INTERNAL_ERROR = 500  #: RFC 3261 21.5.1
    NOT_IMPLEMENTED = 501  #: RFC 3261 21.5.2
    SERVICE_UNAVAILABLE = 503  #: RFC 3261 21.5.4
    SERVER_TIMEOUT = 504  #: RFC 3261 21.5.5
    VERSION_NOT_SUPPORTED = 505  #: RFC 3261 21.5.6
    MESSAGE_TOO_LARGE = 513  #: RFC 3261 21.5.7
    BUSY_EVERYWHERE = 600  #: RFC 3261 21.6.1
    DECLINE = 603  #: RFC 3261 21.6.2


_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    302: "Moved Temporarily",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
}

_CLASS_PHRASES = {1: "Progress", 2: "OK", 3: "Redirect", 4: "Client Error", 5: "Server Error"}


def reason_phrase(status: int) -> str:
    """The default reason phrase for a status code (a generic one for unknown codes)."""
    return _PHRASES.get(status) or _CLASS_PHRASES.get(status // 100, "Global Failure")
