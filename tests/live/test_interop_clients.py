"""Real third-party MCP clients against a live daphne server, OAuth included.

- mcp-remote (what Claude Desktop runs; tests/support/interop_clients.py drives it over stdio),
  with the README's Claude Desktop arguments and pinned to `--transport http-only` and
  `--transport sse-only`: it meets the 401, discovers, registers, opens "the browser"
  (a headless hook that logs in and consents), exchanges the code, then lists and calls
  tools; `whoami` answers as the live user and the client mcp-remote registered.
  "Deny" on the consent page ends it with no token.
- The MCP Inspector CLI, over `/mcp` (`--transport http`) and `/sse` (`--transport sse`),
  with a bearer token obtained through the real OAuth flow.
- The README's Python example (`mcp` SDK, browser sign-in, pasted redirect), run as a script.
- Expiry: with 2-second access tokens, mcp-remote (both transports) and the `mcp` SDK's
  client keep calling tools after the token they held expired, by refreshing; the
  refresh token rotates and nobody is sent back to the browser.
- Shutdown: the server stops on SIGTERM although mcp-remote left its session open.
"""

import hashlib
import sqlite3
import time
from contextlib import closing

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.browser import HeadlessBrowser
from tests.support.interop_clients import (
    PROTOCOL_VERSION,
    ClientError,
    McpRemote,
    Token,
    missing_clients,
    obtain_token,
    run_inspector,
    run_python_example,
)
from tests.support.live_server import LiveServer
from tests.support.sdk_oauth import (
    ExchangeLog,
    MemoryTokenStorage,
    mcp_http_client,
    oauth_provider,
    query_of,
    wait_until_expired,
)

pytestmark = [pytest.mark.live]

TOOLS = {"add", "subtract", "multiply", "divide", "power", "sqrt", "calculate", "whoami"}
SHORT_TTL = 2  # seconds; MCP_ACCESS_TOKEN_TTL for the expiry tests
EXPIRY_WAIT = SHORT_TTL + 15.0  # bound on waiting for a token to pass its expiry


@pytest.fixture(scope="module", autouse=True)
def _clients_installed():
    missing = missing_clients()
    if missing:
        pytest.fail(f"the npm clients are not installed (make test-deps, or npm ci): missing {missing}")


@pytest.fixture
def mcp_remote(tmp_path):
    """`start(server, path, args, decision)`: an McpRemote (not yet running) with its own token store."""
    count = 0

    def start(server: LiveServer, path: str, args: list[str] = (), decision: str = "allow") -> McpRemote:
        nonlocal count
        count += 1
        workdir = tmp_path / f"mcp-remote-{count}"
        return McpRemote(server.url + path, workdir, server.username, server.password, args=args, decision=decision)

    return start


def structured(result: dict) -> dict:
    assert result.get("isError") is False, result
    return result["structuredContent"]


async def rejected(server: LiveServer, access_token: str) -> bool:
    """Whether the server's MCP endpoint now refuses `access_token` (401)."""
    message = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "probe", "version": "1"},
        },
    }
    headers = {"authorization": f"Bearer {access_token}", "accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(timeout=15, trust_env=False) as http:
        response = await http.post(server.url + "/mcp", json=message, headers=headers)
    if response.status_code == 200:  # it was accepted and opened a session: end it
        session = {"mcp-session-id": response.headers["mcp-session-id"], "mcp-protocol-version": PROTOCOL_VERSION}
        async with httpx2.AsyncClient(timeout=15, trust_env=False) as http:
            await http.delete(server.url + "/mcp", headers={**headers, **session})
    return response.status_code == 401 and 'error="invalid_token"' in response.headers.get("www-authenticate", "")


# ---------------------------------------------------------------------------
# mcp-remote
# ---------------------------------------------------------------------------
MCP_REMOTE_MODES = [
    # The README's Claude Desktop config: `npx mcp-remote <url>/mcp`, default strategy (http-first).
    pytest.param("/mcp", [], id="claude-desktop-config"),
    pytest.param("/mcp", ["--transport", "http-only"], id="http-only"),
    pytest.param("/sse", ["--transport", "sse-only"], id="sse-only"),
    # mcp-remote negotiating the era (server/discover first): it lands on 2026-07-28 here.
    pytest.param("/mcp", ["--protocol", "auto"], id="protocol-auto"),
]


@pytest.mark.anyio
@pytest.mark.parametrize("path, args", MCP_REMOTE_MODES)
async def test_mcp_remote_signs_in_and_calls_tools(live_server, mcp_remote, path, args):
    async with mcp_remote(live_server, path, args) as remote:
        hello = await remote.initialize()
        tools = {tool["name"]: tool for tool in (await remote.result_of("tools/list"))["tools"]}
        added = await remote.call_tool("add", {"a": 2, "b": 40})
        divided = await remote.call_tool("divide", {"a": 1, "b": 0})
        who = await remote.call_tool("whoami", {})
        assert await remote.close() == 0

    assert hello["protocolVersion"] == PROTOCOL_VERSION
    assert hello["serverInfo"]["name"] == "django-mcp"
    assert set(tools) >= TOOLS
    assert tools["add"]["inputSchema"]["required"] == ["a", "b"]
    assert structured(added) == {"result": 42}
    assert divided["isError"] is True  # a tool error travels through the bridge as a result
    identity = structured(who)
    assert identity["user"]["username"] == live_server.username

    # The OAuth it did: one browser sign-in, as the public client it registered, with PKCE and
    # the resource indicator, back to its loopback callback.
    registered = remote.client_info()
    assert identity["client"]["client_id"] == registered["client_id"]
    assert registered["token_endpoint_auth_method"] == "none" and not registered.get("client_secret")
    (sign_in,) = remote.sign_ins()
    authorize = query_of(sign_in.split()[1])
    assert authorize["client_id"] == registered["client_id"]
    assert authorize["code_challenge_method"] == "S256"
    assert authorize["resource"].rstrip("/") == live_server.url
    assert authorize["redirect_uri"].startswith("http://localhost:")
    assert authorize["redirect_uri"] in registered["redirect_uris"]
    tokens = remote.stored_tokens()
    assert tokens["token_type"].lower() == "bearer" and tokens["scope"] == "mcp" and tokens["refresh_token"]
    # The era it spoke to the server: 2026-07-28 calls have no session, handshake-era calls do.
    sessions = {session for (session,) in _audited_sessions(live_server, tools=("add", "divide", "whoami"))[-3:]}
    assert (sessions == {""}) == ("auto" in args), sessions


def _audited_sessions(server, tools) -> list[tuple[str]]:
    """The session ids of the server's audited calls of `tools`, oldest first."""
    with closing(sqlite3.connect(server.database)) as database:
        marks = ",".join("?" * len(tools))
        query = f"SELECT session_id FROM mcp_app_toolcall WHERE tool IN ({marks}) ORDER BY id"
        return database.execute(query, tools).fetchall()


@pytest.mark.anyio
async def test_mcp_remote_denied_consent_ends_it_without_a_token(live_server, mcp_remote):
    async with mcp_remote(live_server, "/mcp", decision="deny") as remote:
        with pytest.raises(ClientError, match="closed its stdout"):
            await remote.initialize()
    assert remote.process.returncode == 1
    assert "access_denied" in remote.stderr_path.read_text()
    assert remote.stored_tokens() is None
    assert remote.sign_ins() == []


async def wait_for_stored_expiry(remote: McpRemote) -> dict:
    """Until the token mcp-remote stored is past the expiry it saved with it; returns that token.

    Polls the store (mcp-remote could refresh in the background, moving the expiry) and
    the clock, within EXPIRY_WAIT seconds."""
    with anyio.fail_after(EXPIRY_WAIT):
        while True:
            tokens = remote.stored_tokens()
            if time.time() * 1000 >= tokens["expires_at"]:  # milliseconds since the epoch
                return tokens
            await anyio.sleep(0.05)


@pytest.mark.anyio
@pytest.mark.parametrize("path, args", [MCP_REMOTE_MODES[1], MCP_REMOTE_MODES[2]])
async def test_mcp_remote_keeps_working_past_token_expiry(live_server_factory, mcp_remote, path, args):
    server = live_server_factory(MCP_ACCESS_TOKEN_TTL=str(SHORT_TTL))
    # mcp-remote refreshes when a token is within 60 s of its expiry, so with 2-second tokens
    # it refreshes before each request (a handful here: under its limit of 20 in 30 s).
    async with mcp_remote(server, path, args) as remote:
        await remote.initialize()
        added = await remote.call_tool("add", {"a": 1, "b": 2})
        expired = await wait_for_stored_expiry(remote)
        assert await rejected(server, expired["access_token"]), "the server still accepts the expired token"
        who = await remote.call_tool("whoami", {})
        renewed = remote.stored_tokens()
        assert await remote.close() == 0

    assert structured(added) == {"result": 3}
    assert expired["expires_in"] == SHORT_TTL
    assert structured(who)["user"]["username"] == server.username
    assert renewed["access_token"] != expired["access_token"]
    assert renewed["refresh_token"] != expired["refresh_token"]  # rotated
    assert renewed["expires_at"] > expired["expires_at"]
    assert len(remote.sign_ins()) == 1, "refreshed, not sent back to the browser"
    assert "Refreshed the access token" in remote.stderr_path.read_text()


# ---------------------------------------------------------------------------
# The Inspector CLI
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def inspector_token(live_server) -> Token:
    return anyio.run(obtain_token, live_server)


INSPECTOR_TRANSPORTS = [pytest.param("/mcp", "http", id="http"), pytest.param("/sse", "sse", id="sse")]


@pytest.mark.parametrize("path, transport", INSPECTOR_TRANSPORTS)
def test_inspector_cli_lists_and_calls_tools(live_server, inspector_token, path, transport):
    url, token = live_server.url + path, inspector_token.access_token

    listed = run_inspector(url, transport, token, "--method", "tools/list")
    tools = {tool["name"]: tool for tool in listed["tools"]}
    assert set(tools) >= TOOLS
    assert tools["add"]["inputSchema"]["required"] == ["a", "b"]

    # --tool-arg values are strings on the command line; the CLI converts them by the tool's schema.
    added = run_inspector(
        url, transport, token, "--method", "tools/call", "--tool-name", "add", "--tool-arg", "a=2", "b=40.5"
    )
    assert structured(added) == {"result": 42.5}
    calculated = run_inspector(
        url, transport, token, "--method", "tools/call", "--tool-name", "calculate", "--tool-arg", "expression=(1+2)*3"
    )
    assert structured(calculated) == {"result": 9}
    who = run_inspector(url, transport, token, "--method", "tools/call", "--tool-name", "whoami")
    identity = structured(who)
    assert identity["user"]["username"] == live_server.username
    assert identity["client"]["client_id"] == inspector_token.client_id


@pytest.mark.anyio
async def test_inspector_cli_with_the_token_mcp_remote_stored(live_server, mcp_remote):
    """The README's way to a token for the CLI: sign in once with mcp-remote, read its token store."""
    async with mcp_remote(live_server, "/mcp") as remote:
        await remote.initialize()
        assert await remote.close() == 0
    # The README's command reads ~/.mcp-auth/mcp-remote-v1/<md5 of the server URL>_tokens.json.
    (token_file,) = remote.config_dir.glob("mcp-remote-v1/*_tokens.json")
    assert token_file.name == hashlib.md5(remote.url.encode()).hexdigest() + "_tokens.json"
    stored = remote.stored_tokens()

    who = run_inspector(
        live_server.url + "/mcp", "http", stored["access_token"], "--method", "tools/call", "--tool-name", "whoami"
    )
    identity = structured(who)
    assert identity["user"]["username"] == live_server.username
    assert identity["client"]["client_id"] == remote.client_info()["client_id"]


# ---------------------------------------------------------------------------
# The Python SDK
# ---------------------------------------------------------------------------
def test_python_example_from_the_readme(live_server, tmp_path):
    """examples/python_client.py, run as a person would: browser, paste, output."""
    printed = run_python_example(live_server, tmp_path)
    assert "add: {'result': 42" in printed  # 42 or 42.0
    assert f"'username': '{live_server.username}'" in printed
    assert "'client_id'" in printed


@pytest.mark.anyio
async def test_sdk_client_keeps_calling_tools_past_token_expiry(live_server_factory):
    server = live_server_factory(MCP_ACCESS_TOKEN_TTL=str(SHORT_TTL))
    log, storage = ExchangeLog(), MemoryTokenStorage()
    async with HeadlessBrowser(server.username, server.password) as browser:
        provider = oauth_provider(server, browser, storage=storage)
        async with mcp_http_client(server, provider, log=log) as http:
            async with Client(streamable_http_client(server.url + "/mcp", http_client=http)) as client:
                added = await client.call_tool("add", {"a": 1, "b": 2})
                first = storage.tokens
                await wait_until_expired(provider, timeout=EXPIRY_WAIT)
                assert await rejected(server, first.access_token), "the server still accepts the expired token"
                who = await client.call_tool("whoami", {})
                second = storage.tokens
                await wait_until_expired(provider, timeout=EXPIRY_WAIT)
                again = await client.call_tool("multiply", {"a": 6, "b": 7})

    assert added.structured_content == {"result": 3}
    assert who.structured_content["user"]["username"] == server.username
    assert again.structured_content == {"result": 42}
    assert len(browser.visited) == 1, "refreshed, not sent back to the browser"
    exchanges = log.to("POST", "/token")
    sent, issued = [exchange.form() for exchange in exchanges], [exchange.response_json() for exchange in exchanges]
    assert sent[0]["grant_type"] == "authorization_code" and issued[0]["refresh_token"] == first.refresh_token
    assert len(sent) >= 3 and {grant["grant_type"] for grant in sent[1:]} == {"refresh_token"}
    for previous, refresh in zip(
        issued, sent[1:], strict=False
    ):  # each refresh presented the token the last one rotated in
        assert refresh["refresh_token"] == previous["refresh_token"]
    assert len({first.refresh_token, second.refresh_token, storage.tokens.refresh_token}) == 3
    assert len({first.access_token, second.access_token, storage.tokens.access_token}) == 3


# ---------------------------------------------------------------------------
# Shutdown
# ---------------------------------------------------------------------------
@pytest.mark.anyio
async def test_server_stops_promptly_after_mcp_remote_left_its_session_open(live_server_factory, mcp_remote):
    """mcp-remote (like the Inspector: the TypeScript SDK's transport) never DELETEs its
    session, and a session that ran a sync tool holds an anyio worker thread until it ends.
    The server must still stop on SIGTERM (it closes its sessions from daphne's shutdown
    trigger); LiveServer.stop() raises if the process outlives its 10-second grace."""
    server = live_server_factory()
    async with mcp_remote(server, "/mcp") as remote:
        await remote.initialize()
        assert structured(await remote.call_tool("add", {"a": 1, "b": 2})) == {"result": 3}
        assert await remote.close() == 0
    server.stop()
    assert server.process.returncode is not None
