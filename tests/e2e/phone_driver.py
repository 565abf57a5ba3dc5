"""Headless Chromium with the web phone, driven from trio: Playwright in a child process.

Playwright's Python API runs on asyncio or on greenlets, and the tests run on trio, so the
browser side is a small program (``python -m tests.e2e.phone_driver``) that reads one JSON
command per line on standard input and writes exactly one JSON reply line per command on
standard output; the page's console and the program's logs go to standard error.
``PhoneDriver`` is the trio side: it starts the program, sends commands and turns replies
into values or ``PhoneDriverError``.

The browser is Debian's Chromium (no browser download), headless, with Chromium's fake
microphone (a beep every second) granted without a prompt and the gateway's certificate
accepted. A command that fails is answered with an error reply; the program goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

__all__ = ["CHROMIUM", "PROBE_SCRIPT", "PhoneDriver", "PhoneDriverError", "main"]

CHROMIUM = "/usr/bin/chromium"
REPO_ROOT = Path(__file__).resolve().parents[2]
#: A command the program does not answer within this time marks the driver as broken;
#: ``wait`` commands carry their own, shorter, limit.
_COMMAND_TIMEOUT_S = 45.0
_CHROMIUM_ARGS = (
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--ignore-certificate-errors",
    # The remote audio element plays without a click, so that the received audio is
    # rendered and counted in totalAudioEnergy.
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",
    "--disable-gpu",
)
#: Host candidates on 127.0.0.1, where the gateway's media listens in most tests (Chromium
#: leaves loopback interfaces out of ICE otherwise, as a browser a person uses does).
_LOOPBACK_ARG = "--allow-loopback-in-peer-connection"

#: Installed in the page before a call: ``window.rtcgwProbe`` records when the call was
#: answered (the session's "accepted") and when getStats first showed inbound audio
#: packets and energy, polling every 20 ms, for at most 60 s.
PROBE_SCRIPT = """() => {
  const probe = {answeredAt: null, firstPacketAt: null, firstEnergyAt: null,
                 packetsReceived: 0, totalAudioEnergy: 0, audioLevel: null};
  window.rtcgwProbe = probe;
  let watched = null;
  let busy = false;
  const started = performance.now();
  const timer = setInterval(async () => {
    if (performance.now() - started > 60000) { clearInterval(timer); return; }
    const session = window.rtcgwPhone.session;
    if (!session) { return; }
    if (watched !== session) {
      watched = session;
      session.on("accepted", () => { probe.answeredAt = performance.now(); });
      if (session.isEstablished() && probe.answeredAt === null) {
        probe.answeredAt = performance.now();
      }
    }
    const pc = session.connection;
    if (!pc || busy) { return; }
    busy = true;
    try {
      const report = await pc.getStats();
      const now = performance.now();
      report.forEach((entry) => {
        if (entry.type !== "inbound-rtp" || entry.kind !== "audio") { return; }
        probe.packetsReceived = entry.packetsReceived || 0;
        probe.totalAudioEnergy = entry.totalAudioEnergy || 0;
        probe.audioLevel = entry.audioLevel === undefined ? null : entry.audioLevel;
        if (probe.firstPacketAt === null && probe.packetsReceived > 0) {
          probe.firstPacketAt = now;
        }
        if (probe.firstEnergyAt === null &&
            (probe.totalAudioEnergy > 0 || (probe.audioLevel || 0) > 0)) {
          probe.firstEnergyAt = now;
        }
      });
      if (probe.firstEnergyAt !== null && probe.firstPacketAt !== null) {
        clearInterval(timer);
      }
    } catch (error) {
      // The connection closed between two polls.
    } finally {
      busy = false;
    }
  }, 20);
  return true;
}"""


class PhoneDriverError(Exception):
    """The phone driver failed a command, died, or the page did not reach a state."""


# -- trio side ---------------------------------------------------------------------------------


class PhoneDriver:
    """The trio handle of one driver program; create it with ``PhoneDriver.start()``."""

    def __init__(self, process: trio.Process) -> None:
        self._process = process
        self._buffer = b""
        self._lock = trio.Lock()
        #: Chromium's version, known once the program has started
        self.version = ""

    @property
    def pid(self) -> int:
        return self._process.pid

    @classmethod
    @asynccontextmanager
    async def start(cls, *, loopback_candidates: bool = True) -> AsyncIterator[PhoneDriver]:
        """Start the program and yield its handle once Chromium runs (offering loopback
        host candidates unless ``loopback_candidates`` is False, as a browser by default).

        When the block ends the program's standard input is closed (it closes the browser
        and exits); if it is still running 10 s later it is killed by its PID.
        """
        process = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-m",
                "tests.e2e.phone_driver",
                *([_LOOPBACK_ARG] if loopback_candidates else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        driver = cls(process)
        try:
            with trio.fail_after(_COMMAND_TIMEOUT_S):
                driver.version = str((await driver._reply("start"))["version"])
            yield driver
        finally:
            with trio.CancelScope(shield=True):
                await driver._stop()

    async def _stop(self) -> None:
        process = self._process
        if process.returncode is None and process.stdin is not None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await process.stdin.aclose()
            with trio.move_on_after(10):
                await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()

    async def call(self, command: str, **params: object) -> Any:
        """Send one command and return its result (see ``_Program`` for the commands)."""
        async with self._lock:
            stdin = self._process.stdin
            if stdin is None or self._process.returncode is not None:
                raise PhoneDriverError(f"phone driver {self.pid} is not running ({command})")
            line = json.dumps({"command": command, **params}) + "\n"
            try:
                with trio.fail_after(_COMMAND_TIMEOUT_S):
                    await stdin.send_all(line.encode())
                    return await self._reply(command)
            except trio.TooSlowError:
                raise PhoneDriverError(
                    f"phone driver {self.pid}: no reply to {command!r} "
                    f"within {_COMMAND_TIMEOUT_S:.0f} s"
                ) from None
            except trio.BrokenResourceError:
                raise PhoneDriverError(
                    f"phone driver {self.pid} closed its input before {command!r}"
                ) from None

    async def _reply(self, command: str) -> Any:
        stdout = self._process.stdout
        if stdout is None:
            raise PhoneDriverError(f"phone driver {self.pid} has no standard output pipe")
        while b"\n" not in self._buffer:
            chunk = await stdout.receive_some(65536)
            if not chunk:
                raise PhoneDriverError(
                    f"phone driver {self.pid} exited (code {self._process.poll()}) before "
                    f"replying to {command!r}; its log is on standard error"
                )
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            raise PhoneDriverError(
                f"phone driver {self.pid}: reply to {command!r} is not JSON: {line[:200]!r}"
            ) from None
        if not reply.get("ok"):
            raise PhoneDriverError(
                f"phone driver {self.pid}: {command} failed: {reply.get('error')}"
            )
        return reply.get("result")

    async def goto(self, url: str) -> None:
        """Open ``url`` and wait until the page has loaded."""
        await self.call("goto", url=url)

    async def fill(self, selector: str, value: str) -> None:
        """Type ``value`` into the input ``selector``."""
        await self.call("fill", selector=selector, value=value)

    async def click(self, selector: str) -> None:
        """Click ``selector`` once it is enabled."""
        await self.call("click", selector=selector)

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript function expression evaluated in the page."""
        return await self.call("evaluate", expression=expression)

    async def wait(self, expression: str, *, timeout_s: float = 20.0) -> Any:
        """Wait until the JavaScript function ``expression`` returns a truthy value in the
        page; returns that value, or raises PhoneDriverError with the phone's state."""
        return await self.call("wait", expression=expression, timeout_s=timeout_s)

    async def phone(self) -> dict[str, Any]:
        """The JSON-able fields of ``window.rtcgwPhone``."""
        state: dict[str, Any] = await self.call("phone")
        return state


# -- program side ------------------------------------------------------------------------------

_PHONE_STATE = """() => {
  const p = window.rtcgwPhone || {};
  return {registered: p.registered, registrationState: p.registrationState,
          connected: p.connected, callState: p.callState, direction: p.direction,
          lastError: p.lastError, stats: p.stats, jssipVersion: p.jssipVersion,
          probe: window.rtcgwProbe || null,
          pc: p.session && p.session.connection ? {
            ice: p.session.connection.iceConnectionState,
            connection: p.session.connection.connectionState,
            local: (p.session.connection.localDescription || {}).sdp,
            remote: (p.session.connection.remoteDescription || {}).sdp} : null};
}"""


def _log(text: str) -> None:
    print(f"phone_driver: {text}", file=sys.stderr, flush=True)


def main() -> int:
    """Run the program: Chromium up, then one reply per command line until end of input."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    out = sys.stdout

    def reply(ok: bool, result: object = None, error: str | None = None) -> None:
        out.write(json.dumps({"ok": ok, "result": result, "error": error}) + "\n")
        out.flush()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*_CHROMIUM_ARGS, *(a for a in sys.argv[1:] if a == _LOOPBACK_ARG)],
        )
        context = browser.new_context(ignore_https_errors=True, permissions=["microphone"])
        page = context.new_page()
        page.on("console", lambda message: _log(f"console.{message.type}: {message.text}"))
        page.on("pageerror", lambda error: _log(f"page error: {error}"))
        page.on(
            "response",
            lambda response: (
                _log(f"HTTP {response.status} for {response.url}")
                if response.status >= 400
                else None
            ),
        )
        reply(True, {"version": browser.version})
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
                command = request.get("command")
                if command == "goto":
                    page.goto(request["url"], wait_until="load", timeout=20_000)
                    result: object = None
                elif command == "fill":
                    page.fill(request["selector"], request["value"], timeout=10_000)
                    result = None
                elif command == "click":
                    page.click(request["selector"], timeout=10_000)
                    result = None
                elif command == "evaluate":
                    result = page.evaluate(request["expression"])
                elif command == "wait":
                    timeout_ms = float(request.get("timeout_s", 20.0)) * 1000
                    try:
                        handle = page.wait_for_function(
                            request["expression"], timeout=timeout_ms, polling=50
                        )
                    except PlaywrightError as failure:
                        state = page.evaluate(_PHONE_STATE)
                        raise RuntimeError(
                            f"{request['expression']} not true within "
                            f"{timeout_ms / 1000:.0f} s ({str(failure).splitlines()[0]}); "
                            f"phone: {json.dumps(state)}"
                        ) from None
                    result = handle.json_value()
                elif command == "phone":
                    result = page.evaluate(_PHONE_STATE)
                else:
                    raise ValueError(f"unknown command {command!r}")
            except Exception as failure:  # any failure is reported; the program goes on
                _log(f"command failed: {failure}")
                reply(False, error=f"{type(failure).__name__}: {failure}")
                continue
            reply(True, result)
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
