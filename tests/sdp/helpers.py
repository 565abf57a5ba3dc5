"""Shared pieces of the SDP tests: the corpus folder and small builders."""

from __future__ import annotations

from pathlib import Path

from rtcgw.sdp import SessionDescription, parse_sdp

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "sdp"
CORPUS_FILES = sorted(CORPUS.glob("*.sdp"))


def corpus(name: str) -> SessionDescription:
    """The corpus file ``name`` (without folder), parsed."""
    return parse_sdp((CORPUS / name).read_bytes())


def normalized(data: bytes) -> bytes:
    """``data`` with CRLF endings, each line right-stripped, trailing empty lines dropped."""
    lines = [line.rstrip() for line in data.decode("utf-8").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


MINIMAL = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n"


def sdp(*lines: str) -> str:
    """A description: the minimal session lines followed by ``lines``."""
    return MINIMAL + "".join(line + "\r\n" for line in lines)
