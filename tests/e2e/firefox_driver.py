"""Headless Firefox ESR driven from trio over WebDriver BiDi, with no driver download.

Playwright's Firefox is a patched build of its own, which we do not download; Debian's
``firefox-esr`` speaks WebDriver BiDi itself (``--remote-debugging-port``), so the tests
talk to it directly: one WebSocket to ``ws://127.0.0.1:PORT/session``, JSON commands with
ids, JSON replies and events. Only what the tests need is here: a session that accepts
the gateway's self-signed certificate, navigation, calling a function in the page, and
the page's console on standard error.

The browser runs on a fresh profile whose ``user.js`` gives it Firefox's fake microphone
(a tone) without a prompt, loopback ICE candidates without mDNS names, autoplay, and no
traffic off the machine: the background services that would call out are off, whatever
is left goes to a proxy address where nothing listens (loopback is never proxied, and a
proxied name is not looked up in DNS), and Firefox's own test switch refuses any
connection to another machine.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

__all__ = ["FIREFOX", "PREFERENCES", "FirefoxDriver", "FirefoxError", "write_profile"]

FIREFOX = "/usr/bin/firefox-esr"
#: A command Firefox does not answer within this time marks the driver as broken.
_COMMAND_TIMEOUT_S = 45.0
_STARTUP_TIMEOUT_S = 30.0
_LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")
#: Where traffic that would leave the machine is sent instead: the discard port on
#: loopback, where nothing listens.
_DEAD_PROXY = ("127.0.0.1", 9)

#: Firefox's own switches for test runs: connections to anything but this machine are
#: refused, and Remote Settings accepts the placeholder server below (a release build
#: ignores that preference otherwise, and looks its default server up in DNS).
_ENVIRONMENT = {"MOZ_DISABLE_NONLOCAL_CONNECTIONS": "1", "MOZ_CRASHREPORTER_DISABLE": "1"}

PREFERENCES: dict[str, bool | int | str] = {
    # The fake microphone (a tone), granted without a prompt.
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    # A fake device counts as capturing only with this: without it, Firefox gathers on
    # the default route's addresses alone, never on loopback.
    "media.navigator.permission.fake": True,
    # Host candidates on 127.0.0.1 as they are: Firefox leaves loopback out of ICE and
    # hides host addresses behind mDNS names otherwise, as a browser a person uses does.
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    # The remote audio element plays without a click, so received audio is rendered.
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    # No plugin download (OpenH264) and no other background service that calls out.
    "media.gmp-manager.updateEnabled": False,
    "media.gmp-manager.url": "data:,",
    "media.gmp-gmpopenh264.enabled": False,
    "media.gmp-gmpopenh264.autoupdate": False,
    "app.update.auto": False,
    "app.update.disabledForTesting": True,
    "app.normandy.enabled": False,
    "app.normandy.api_url": "",
    "app.shield.optoutstudies.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "browser.safebrowsing.provider.google4.updateURL": "",
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.page": 0,
    "browser.startup.homepage": "about:blank",
    "browser.newtabpage.enabled": False,
    "browser.newtabpage.activity-stream.feeds.system.topstories": False,
    "browser.newtabpage.activity-stream.feeds.section.topstories": False,
    "browser.newtabpage.activity-stream.telemetry": False,
    "browser.region.network.url": "",
    "browser.region.update.enabled": False,
    "browser.search.update": False,
    "browser.topsites.contile.enabled": False,
    "browser.ping-centre.telemetry": False,
    "browser.places.speculativeConnect.enabled": False,
    "browser.urlbar.speculativeConnect.enabled": False,
    "browser.ml.enable": False,
    "browser.translations.enable": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.archive.enabled": False,
    "toolkit.telemetry.server": "data:,",
    "toolkit.coverage.endpoint.base": "",
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.blocklist.enabled": False,
    "extensions.systemAddon.update.enabled": False,
    "messaging-system.rsexperimentloader.enabled": False,
    "services.settings.server": "data:,#remote-settings-dummy/v1",
    "security.remote_settings.crlite_filters.enabled": False,
    "security.remote_settings.intermediates.enabled": False,
    "security.OCSP.enabled": 0,
    "geo.provider.network.url": "",
    "dom.push.connection.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.predictor.enabled": False,
    "network.http.speculative-parallel-limit": 0,
    "network.trr.mode": 5,
    "network.proxy.type": 1,
    "network.proxy.http": _DEAD_PROXY[0],
    "network.proxy.http_port": _DEAD_PROXY[1],
    "network.proxy.ssl": _DEAD_PROXY[0],
    "network.proxy.ssl_port": _DEAD_PROXY[1],
    "network.proxy.no_proxies_on": "",
    "network.proxy.allow_hijacking_localhost": False,
}


class FirefoxError(Exception):
    """Firefox did not start, failed a command, or the page did not reach a state."""


def write_profile(directory: Path) -> Path:
    """Make ``directory`` a fresh profile with the tests' preferences; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        f"user_pref({json.dumps(name)}, {json.dumps(value)});"
        for name, value in PREFERENCES.items()
    ]
    (directory / "user.js").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


class FirefoxDriver:
    """One Firefox and its BiDi session; create it with ``FirefoxDriver.start()``."""

    def __init__(self, process: trio.Process, websocket: WebSocketConnection) -> None:
        self._process = process
        self._websocket = websocket
        self._ids = itertools.count(1)
        self._replies: dict[int, trio.MemorySendChannel[dict[str, Any]]] = {}
        #: the browsing context (tab) the commands act on, and Firefox's version
        self.context = ""
        self.version = ""

    @property
    def pid(self) -> int:
        return self._process.pid

    @classmethod
    @asynccontextmanager
    async def start(cls, profile: Path) -> AsyncIterator[FirefoxDriver]:
        """Start headless Firefox on a fresh profile in ``profile`` and yield its handle
        once a BiDi session is open on its first tab.

        When the block ends the browser is asked to close; if it still runs 10 s later it
        is terminated, then killed, by its PID.
        """
        write_profile(profile)
        command = [
            FIREFOX, "--headless", "--no-remote", "--profile", str(profile),
            "--remote-debugging-port", "0", "about:blank",
        ]  # fmt: skip
        process = await trio.lowlevel.open_process(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **_ENVIRONMENT},
        )
        try:
            async with trio.open_nursery() as nursery:
                assert process.stderr is not None
                with trio.fail_after(_STARTUP_TIMEOUT_S):
                    url = await nursery.start(_follow_log, process.stderr)
                async with open_websocket_url(
                    f"{url}/session",
                    max_message_size=16 * 1024 * 1024,
                    connect_timeout=_STARTUP_TIMEOUT_S,
                    disconnect_timeout=5,
                ) as websocket:
                    driver = cls(process, websocket)
                    nursery.start_soon(driver._read)
                    with trio.fail_after(_COMMAND_TIMEOUT_S):
                        await driver._open_session()
                    try:
                        yield driver
                    finally:
                        with trio.CancelScope(shield=True), trio.move_on_after(10):
                            await driver._close_browser()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await _end(process)

    async def _open_session(self) -> None:
        capabilities = {"alwaysMatch": {"acceptInsecureCerts": True}}
        session = await self.command("session.new", capabilities=capabilities)
        self.version = str(session["capabilities"].get("browserVersion", ""))
        tree = await self.command("browsingContext.getTree", maxDepth=0)
        self.context = str(tree["contexts"][0]["context"])
        await self.command("session.subscribe", events=["log.entryAdded"])

    async def _close_browser(self) -> None:
        with contextlib.suppress(FirefoxError, ConnectionClosed, trio.BrokenResourceError):
            await self.command("browser.close")
        await self._process.wait()

    async def command(self, method: str, **params: object) -> dict[str, Any]:
        """Send one BiDi command and return its result."""
        number = next(self._ids)
        send, receive = trio.open_memory_channel[dict[str, Any]](1)
        self._replies[number] = send
        try:
            with trio.fail_after(_COMMAND_TIMEOUT_S):
                message = {"id": number, "method": method, "params": params}
                await self._websocket.send_message(json.dumps(message))
                reply = await receive.receive()
        except trio.TooSlowError:
            raise FirefoxError(
                f"firefox {self.pid}: no reply to {method} within {_COMMAND_TIMEOUT_S:.0f} s"
            ) from None
        except trio.EndOfChannel:
            raise FirefoxError(f"firefox {self.pid} closed its session before {method}") from None
        finally:
            del self._replies[number]
        if reply.get("type") != "success":
            raise FirefoxError(
                f"firefox {self.pid}: {method} failed: {reply.get('error')}: {reply.get('message')}"
            )
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def _read(self) -> None:
        """Hand each reply to its command; print the page's console on standard error."""
        try:
            while True:
                message = json.loads(await self._websocket.get_message())
                number = message.get("id")
                if isinstance(number, int) and number in self._replies:
                    await self._replies[number].send(message)
                elif message.get("method") == "log.entryAdded":
                    entry = message.get("params", {})
                    _log(f"console.{entry.get('level')}: {entry.get('text')}")
        except ConnectionClosed:
            pass
        finally:
            for channel in list(self._replies.values()):
                channel.close()

    async def goto(self, url: str) -> None:
        """Open ``url`` in the tab and wait until the page has loaded."""
        await self.command(
            "browsingContext.navigate", context=self.context, url=url, wait="complete"
        )

    async def evaluate(self, function: str) -> Any:
        """The JSON value of a JavaScript function expression called in the page (awaited
        if it returns a promise)."""
        declaration = f"async () => JSON.stringify(await ({function})())"
        reply = await self.command(
            "script.callFunction",
            functionDeclaration=declaration,
            awaitPromise=True,
            target={"context": self.context},
        )
        if reply.get("type") == "exception":
            details = reply.get("exceptionDetails", {})
            raise FirefoxError(f"firefox {self.pid}: the page threw: {details.get('text')}")
        value = reply.get("result", {})
        if value.get("type") != "string":
            return None  # JSON.stringify(undefined)
        return json.loads(value["value"])

    async def wait(
        self, function: str, *, timeout_s: float = 20.0, state: str | None = None
    ) -> Any:
        """Wait until the function returns a truthy value in the page (polled every 50 ms);
        returns that value, or raises FirefoxError with the value of the function
        ``state`` (the page's state, when given)."""
        with trio.move_on_after(timeout_s):
            for _ in range(int(timeout_s / 0.05) + 1):
                value = await self.evaluate(function)
                if value:
                    return value
                await trio.sleep(0.05)
        seen = "" if state is None else f"; page: {json.dumps(await self.evaluate(state))}"
        raise FirefoxError(f"{function} not true within {timeout_s:.0f} s{seen}")

    async def fill(self, selector: str, value: str) -> None:
        """Set the input ``selector`` to ``value``, as typing would (an input event)."""
        await self.evaluate(
            f"""() => {{
              const input = document.querySelector({json.dumps(selector)});
              input.value = {json.dumps(value)};
              input.dispatchEvent(new Event("input", {{bubbles: true}}));
              return true;
            }}"""
        )

    async def click(self, selector: str) -> None:
        """Click ``selector`` once it is enabled (waits at most 10 s)."""
        element = f"document.querySelector({json.dumps(selector)})"
        await self.wait(f"() => {element} !== null && !{element}.disabled", timeout_s=10)
        await self.evaluate(f"() => {{ {element}.click(); return true; }}")


async def _follow_log(
    stream: trio.abc.ReceiveStream, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Copy Firefox's log to standard error; report the BiDi URL once Firefox prints it."""
    buffer = b""
    started = False
    async for chunk in stream:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", errors="replace")
            _log(line)
            found = _LISTENING.search(line)
            if found and not started:
                started = True
                task_status.started(found.group(1))
    if not started:
        raise FirefoxError("firefox exited before it listened for WebDriver BiDi")


async def _end(process: trio.Process) -> None:
    if process.returncode is None:
        process.terminate()
        with trio.move_on_after(10):
            await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()


def _log(text: str) -> None:
    print(f"firefox: {text}", file=sys.stderr, flush=True)
