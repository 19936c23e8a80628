"""The `mcp` SDK's own client, with the full OAuth flow, against a real daphne
process: over Streamable HTTP (`/mcp`) and over legacy HTTP+SSE (`/sse`)."""

import json

import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.support.browser import HeadlessBrowser
from tests.support.sdk_oauth import MemoryTokenStorage, mcp_http_client, oauth_provider

pytestmark = [pytest.mark.live, pytest.mark.anyio]
# tests/support/scoped_tools.py, named rather than imported: importing it here would register its
# tool in this test process too.
SCOPED_TOOLS = "tests.support.scoped_tools"
SHOUT_SCOPE = "extras:shout"


async def _exercise(client: Client, username: str) -> None:
    tools = {tool.name for tool in (await client.list_tools()).tools}
    assert {"add", "divide", "calculate", "whoami"} <= tools
    added = await client.call_tool("add", {"a": 2, "b": 40})
    assert added.structured_content == {"result": 42}
    failed = await client.call_tool("divide", {"a": 1, "b": 0})
    assert failed.is_error
    who = await client.call_tool("whoami", {})
    assert username in json.dumps(who.structured_content)


async def test_streamable_http_with_oauth_lands_on_the_stateless_era(live_server):
    """The SDK's client in its default mode probes server/discover and speaks 2026-07-28:
    no initialize, no session, the token on every request."""
    async with HeadlessBrowser(live_server.username, live_server.password) as browser:
        provider = oauth_provider(live_server, browser, path="/mcp")
        async with mcp_http_client(live_server, provider) as http:
            async with Client(streamable_http_client(live_server.url + "/mcp", http_client=http)) as client:
                assert client.protocol_version == "2026-07-28"
                await _exercise(client, live_server.username)
    assert browser.visited, "the OAuth flow ran"


async def test_streamable_http_with_oauth_in_the_handshake_era(live_server):
    """mode="legacy": initialize, a session, the GET stream, as 2025 clients do."""
    async with HeadlessBrowser(live_server.username, live_server.password) as browser:
        provider = oauth_provider(live_server, browser, path="/mcp")
        async with mcp_http_client(live_server, provider) as http:
            transport = streamable_http_client(live_server.url + "/mcp", http_client=http)
            async with Client(transport, mode="legacy") as client:
                assert client.protocol_version == "2025-11-25"
                await _exercise(client, live_server.username)
    assert browser.visited, "the OAuth flow ran"


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_tool_needing_a_wider_scope_makes_the_sdk_client_step_up(live_server_factory, mode):
    """The tool needs extras:shout; the first token has only mcp: HTTP 403 insufficient_scope, the
    SDK's client authorizes again for the scope the challenge names, and the call goes through."""
    server = live_server_factory(MCP_EXTENSIONS=SCOPED_TOOLS)
    storage = MemoryTokenStorage()
    async with HeadlessBrowser(server.username, server.password) as browser:
        provider = oauth_provider(server, browser, path="/mcp", storage=storage)
        async with mcp_http_client(server, provider) as http:
            async with Client(streamable_http_client(server.url + "/mcp", http_client=http), mode=mode) as client:
                assert (await storage.get_tokens()).scope == "mcp"
                shouted = await client.call_tool("shout", {"text": "step up"})
    assert shouted.content[0].text == "STEP UP"
    assert len(browser.visited) == 2, "a second sign-in, for the wider scope"
    assert set((await storage.get_tokens()).scope.split()) == {"mcp", SHOUT_SCOPE}


async def test_legacy_sse_with_oauth(live_server):
    async with HeadlessBrowser(live_server.username, live_server.password) as browser:
        provider = oauth_provider(live_server, browser, path="/sse", storage=MemoryTokenStorage())
        async with Client(sse_client(live_server.url + "/sse", auth=provider)) as client:
            assert client.protocol_version in {"2025-11-25", "2024-11-05"}  # discover probe refused, fell back
            await _exercise(client, live_server.username)
    assert browser.visited, "the OAuth flow ran"


async def test_the_server_stops_promptly_with_sessions_still_open(live_server_factory):
    """A session that ran a sync tool holds an anyio worker thread; SIGTERM must still end the
    process (the sessions are closed from daphne's shutdown trigger). LiveServer.stop() raises
    if the process ignores SIGTERM."""
    from tests.support.sdk_oauth import initialize

    server = live_server_factory()
    async with HeadlessBrowser(server.username, server.password) as browser:
        provider = oauth_provider(server, browser)
        async with mcp_http_client(server, provider) as http:
            opened = await initialize(http, server)
            session = {
                "mcp-session-id": opened.headers["mcp-session-id"],
                "accept": "application/json, text/event-stream",
            }
            call = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "add", "arguments": {"a": 1, "b": 2}},
            }
            answer = await http.post(server.url + "/mcp", json=call, headers=session)
            assert answer.json()["result"]["structuredContent"] == {"result": 3}
    # No DELETE: the session is still open when the server is told to stop.
    server.stop()
    assert server.process.returncode is not None
