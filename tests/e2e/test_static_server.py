"""The HTTPS static server that serves the SIP.js page: what it serves, with which content
type, and what it refuses."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import trio

from tests.e2e.static_server import resolve, serve_static
from tests.integration.handbook import EXAMPLES, client_tls


def _site(root: Path) -> Path:
    (root / "lib").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>t</title>\n", encoding="utf-8")
    (root / "lib" / "index.js").write_text("export const answer = 42;\n", encoding="utf-8")
    (root / "lib" / "index.html").write_text("<p>lib</p>\n", encoding="utf-8")
    return root


def test_resolve_maps_targets_to_files_under_the_root(tmp_path: Path) -> None:
    root = _site(tmp_path / "site")
    (tmp_path / "secret.txt").write_text("outside\n", encoding="utf-8")
    assert resolve(root, "/") == (root / "index.html").resolve()
    assert resolve(root, "/?ws=wss://127.0.0.1:1") == (root / "index.html").resolve()
    assert resolve(root, "/lib/index.js") == (root / "lib" / "index.js").resolve()
    assert resolve(root, "/lib/") == (root / "lib" / "index.html").resolve()
    assert resolve(root, "/missing.js") is None
    assert resolve(root, "/../secret.txt") is None
    assert resolve(root, "/lib/%2e%2e/%2e%2e/secret.txt") is None


def _get(url: str, method: str = "GET") -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, context=client_tls(), timeout=5) as reply:
            return reply.status, reply.headers.get("Content-Type", ""), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


async def test_it_serves_modules_with_a_javascript_type_over_https(tmp_path: Path) -> None:
    root = _site(tmp_path / "site")
    certificate, key = EXAMPLES / "tls" / "example.crt", EXAMPLES / "tls" / "example.key"
    with trio.fail_after(20):
        async with serve_static(root, certificate=certificate, key=key) as (host, port):
            base = f"https://{host}:{port}"
            status, kind, body = await trio.to_thread.run_sync(_get, f"{base}/")
            assert (status, kind) == (200, "text/html; charset=utf-8")
            assert body.startswith(b"<!doctype html>")
            status, kind, body = await trio.to_thread.run_sync(_get, f"{base}/lib/index.js")
            assert (status, kind, body) == (
                200,
                "text/javascript; charset=utf-8",
                b"export const answer = 42;\n",
            )
            status, _, body = await trio.to_thread.run_sync(_get, f"{base}/lib/index.js", "HEAD")
            assert (status, body) == (200, b"")
            status, _, _ = await trio.to_thread.run_sync(_get, f"{base}/nothing.js")
            assert status == 404
            status, _, _ = await trio.to_thread.run_sync(_get, f"{base}/index.html", "POST")
            assert status == 405
