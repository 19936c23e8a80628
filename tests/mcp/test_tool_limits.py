"""The abuse limits on tools/call (mcp_app/engine/limits.py), through the real ASGI application:
a rate per access token, a number of calls running at once per session, a time limit per
call, and the cancellation of running calls when their session ends.

Every refused or timed-out call is in the audit trail too (the limits run inside the
audit middleware). The last test runs two daphne processes on one real Redis and shows
that they count a token's calls together.
"""

import asyncio
import json
import logging
from types import SimpleNamespace

import anyio
import pytest

from mcp_app.engine import limits
from mcp_app.models import ToolCall
from tests.support.asgi_client import (
    TIMEOUT,
    LegacySSEClient,
    StreamableHTTPClient,
    close_stream,
    http,
    parse_events,
    read_until,
    start_call,
)
from tests.support.live_server import mint_token
from tests.support.services import RedisServer, free_port
from tests.support.wire_client import McpWire

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio, pytest.mark.usefixtures("worker")]

SLOW_TOOL = "test_limits_slow"
SLOW_CALL = {"name": SLOW_TOOL, "arguments": {}}
ADD = {"name": "add", "arguments": {"a": 1, "b": 2}}


@pytest.fixture(params=["streamable-http", "sse"])
async def transport(request, app, token):
    client = StreamableHTTPClient(app, token) if request.param == "streamable-http" else LegacySSEClient(app, token)
    yield client
    await client.close()


@pytest.fixture
def slow_tool():
    """A tool that runs until the test releases it, and notes whether it was cancelled (no sleeps)."""
    from mcp.server.mcpserver import Context

    from mcp_app.engine.server import get_mcp_server

    tool = SimpleNamespace(started=asyncio.Event(), release=asyncio.Event(), cancelled=asyncio.Event())

    async def run_until_released(ctx: Context) -> str:
        await ctx.report_progress(1, 2, "started")  # sent only when the call carries a progress token
        tool.started.set()
        try:
            await tool.release.wait()
        except asyncio.CancelledError:
            tool.cancelled.set()
            raise
        return "released"

    server = get_mcp_server()
    server.add_tool(run_until_released, name=SLOW_TOOL)
    yield tool
    tool.release.set()
    server.remove_tool(SLOW_TOOL)


async def records(tool: str | None = None) -> list[ToolCall]:
    rows = ToolCall.objects.order_by("id")
    if tool is not None:
        rows = rows.filter(tool=tool)
    return [row async for row in rows]


def assert_ok(reply: dict) -> None:
    assert "result" in reply and reply["result"]["isError"] is False, reply


# -- per-token rate ----------------------------------------------------------------------
async def test_calls_past_the_rate_limit_get_a_jsonrpc_error(transport, settings):
    settings.MCP_TOOL_CALLS_PER_MINUTE = 2
    await transport.initialize()
    assert_ok(await transport.request("tools/call", ADD))
    assert_ok(await transport.request("tools/call", ADD))

    refused = await transport.request("tools/call", ADD)
    error = refused["error"]
    assert error["code"] == limits.RATE_LIMITED == -32029
    assert error["message"].startswith(
        "Rate limit exceeded: 2 tools/call per minute for you through this client; retry in "
    )
    assert 1 <= error["data"]["retryAfter"] <= 60
    assert error["message"].endswith(f"retry in {error['data']['retryAfter']} s")
    assert error["data"]["limit"] == 2
    # Only tools/call is counted, and the session goes on.
    assert (await transport.request("ping"))["result"] == {}
    assert "tools" in (await transport.request("tools/list"))["result"]
    assert limits.running_calls(transport.session_id) == 0  # a refused call leaves nothing counted

    rows = await records()
    assert [row.outcome for row in rows] == ["ok", "ok", ToolCall.Outcome.PROTOCOL_ERROR]
    assert rows[-1].error_code == -32029 and rows[-1].error_message == error["message"]
    assert rows[-1].tool == "add"


async def test_the_rate_is_per_person_and_client_not_per_session(app, token, other_token, settings):
    settings.MCP_TOOL_CALLS_PER_MINUTE = 1
    first, second = StreamableHTTPClient(app, token), StreamableHTTPClient(app, token)
    other = StreamableHTTPClient(app, other_token)
    for client in (first, second, other):
        await client.initialize()
    assert_ok(await first.request("tools/call", ADD))
    # The same token in a new session has no fresh allowance...
    assert (await second.request("tools/call", ADD))["error"]["code"] == limits.RATE_LIMITED
    # ...another person is not affected.
    assert_ok(await other.request("tools/call", ADD))
    for client in (first, second, other):
        await client.close()


@pytest.fixture
def refreshed_tokens(user):
    """Two live access tokens of one grant, as refreshing gives them (a refresh and its retry)."""
    from django.test import Client

    from tests.support.oauth_flow import full_flow, refresh

    browser = Client()
    browser.force_login(user)
    client_id, tokens = full_flow(browser)
    pairs = [refresh(browser, client_id, tokens["refresh_token"]).json() for _ in range(2)]
    return [pair["access_token"] for pair in pairs]


async def test_a_refreshed_token_gets_no_new_allowance(app, refreshed_tokens, settings):
    """Found by hostile testing: after -32029, a refreshed token made 20 of 20 calls at once."""
    settings.MCP_TOOL_CALLS_PER_MINUTE = 2
    first, refreshed = refreshed_tokens
    before = StreamableHTTPClient(app, first)
    await before.initialize()
    assert_ok(await before.request("tools/call", ADD))
    assert_ok(await before.request("tools/call", ADD))
    assert (await before.request("tools/call", ADD))["error"]["code"] == limits.RATE_LIMITED
    await before.close()
    after = StreamableHTTPClient(app, refreshed)  # another token, the same person and client
    await after.initialize()
    assert (await after.request("tools/call", ADD))["error"]["code"] == limits.RATE_LIMITED
    await after.close()


async def test_a_rate_of_zero_is_no_limit(shttp, settings):
    settings.MCP_TOOL_CALLS_PER_MINUTE = 0
    await shttp.initialize()
    for _ in range(5):
        assert_ok(await shttp.request("tools/call", ADD))


async def test_redis_failing_never_fails_a_call(shttp, settings, caplog):
    """Redis unreachable: calls are answered, counted in this worker instead, with a log line."""
    settings.MCP_TOOL_CALLS_PER_MINUTE = 2
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there
    await shttp.initialize()
    with caplog.at_level(logging.WARNING, logger="mcp_app.engine.limits"):
        assert_ok(await shttp.request("tools/call", ADD))
    assert "tools/call rate limit: Redis unavailable" in caplog.text
    assert_ok(await shttp.request("tools/call", ADD))
    assert (await shttp.request("tools/call", ADD))["error"]["code"] == limits.RATE_LIMITED  # still limited
    assert shttp.token not in caplog.text


# -- calls running at once, per session -------------------------------------------------------
async def test_a_call_beyond_the_sessions_concurrency_limit_is_refused(app, token, settings, slow_tool):
    settings.MCP_MAX_CONCURRENT_CALLS_PER_SESSION = 1
    client, other = StreamableHTTPClient(app, token), StreamableHTTPClient(app, token)
    await client.initialize()
    await other.initialize()
    slow = asyncio.ensure_future(client.request("tools/call", SLOW_CALL))
    await asyncio.wait_for(slow_tool.started.wait(), TIMEOUT)
    assert limits.running_calls(client.session_id) == 1

    refused = (await client.request("tools/call", ADD))["error"]
    assert refused["code"] == limits.TOO_MANY_RUNNING_CALLS == -32030
    assert refused["message"] == (
        "Too many tool calls running: at most 1 at once in this session; retry when one has finished"
    )
    assert refused["data"] == {"maxConcurrentCalls": 1}
    # Other requests of the session, and calls of another session, go on.
    assert (await client.request("ping"))["result"] == {}
    assert_ok(await other.request("tools/call", ADD))

    slow_tool.release.set()
    assert_ok(await asyncio.wait_for(slow, TIMEOUT))
    assert limits.running_calls(client.session_id) == 0
    assert_ok(await client.request("tools/call", ADD))  # room again

    refused_row = next(row for row in await records("add") if row.error_code is not None)
    assert refused_row.outcome == ToolCall.Outcome.PROTOCOL_ERROR
    assert refused_row.error_code == -32030 and refused_row.session_id == client.session_id
    await client.close()
    await other.close()


async def test_a_stateless_call_beyond_its_tokens_concurrency_limit_is_refused_naming_the_token(
    app, token, other_token, settings, slow_tool
):
    """A 2026 request has no session: its token's calls running in this worker are what is counted,
    and the error says so (it once said "in this session" to a caller that has none)."""
    from tests.mcp.test_stateless import post, stateless_request

    settings.MCP_MAX_CONCURRENT_CALLS_PER_SESSION = 1
    slow = asyncio.ensure_future(post(app, token, stateless_request("tools/call", SLOW_CALL)))
    await asyncio.wait_for(slow_tool.started.wait(), TIMEOUT)

    refused = (await post(app, token, stateless_request("tools/call", ADD))).json()["error"]
    assert refused["code"] == -32030
    assert refused["message"] == (
        "Too many tool calls running: at most 1 at once for this access token; retry when one has finished"
    )
    assert refused["data"] == {"maxConcurrentCalls": 1}
    # Another person's token is counted apart.
    assert "error" not in (await post(app, other_token, stateless_request("tools/call", ADD))).json()

    slow_tool.release.set()
    assert (await asyncio.wait_for(slow, TIMEOUT)).status == 200
    assert "error" not in (await post(app, token, stateless_request("tools/call", ADD))).json()  # room again


# -- time limit ---------------------------------------------------------------------------
async def test_a_call_past_the_time_limit_is_cancelled_and_answered_as_a_tool_error(transport, settings, slow_tool):
    settings.MCP_TOOL_CALL_TIMEOUT_SECONDS = 0.2
    await transport.initialize()
    reply = await transport.request("tools/call", SLOW_CALL)
    assert reply["result"]["isError"] is True
    assert reply["result"]["content"] == [{"type": "text", "text": "Tool call timed out after 0.2 s"}]
    assert slow_tool.cancelled.is_set()  # the tool itself was cancelled, not just answered for
    assert_ok(await transport.request("tools/call", ADD))  # the session goes on

    [row] = await records(SLOW_TOOL)
    assert row.outcome == ToolCall.Outcome.TOOL_ERROR
    assert row.error_message == "Tool call timed out after 0.2 s"
    assert row.error_code is None
    assert row.duration_ms >= 200


async def test_a_call_whose_post_went_away_runs_on_until_the_time_limit(app, shttp, settings, slow_tool):
    """Streamable HTTP: a dropped POST is not a cancellation (the client may resume its
    stream with Last-Event-ID); the time limit is what bounds such a call."""
    settings.MCP_TOOL_CALL_TIMEOUT_SECONDS = 0.5
    await shttp.initialize()
    post = await start_call(app, shttp, SLOW_TOOL, 7)
    raw = await read_until(post, lambda b: b"started" in b)
    last_seen = parse_events(raw)[-1]["id"]
    await close_stream(post)
    assert not slow_tool.cancelled.is_set()

    resume = shttp.headers(accept="text/event-stream", **{"last-event-id": last_seen})
    resumed = await http(app, "GET", "/mcp", headers=resume)
    [reply] = [json.loads(event["data"]) for event in parse_events(resumed.body) if event.get("data")]
    # Had the drop cancelled the call, its answer would be an error, not the time limit's tool error.
    assert reply["id"] == 7
    assert reply["result"]["content"][0]["text"] == "Tool call timed out after 0.5 s"
    assert slow_tool.cancelled.is_set()


# -- the session ending cancels its calls --------------------------------------------------------
async def test_delete_cancels_the_sessions_running_calls(app, shttp, slow_tool):
    await shttp.initialize()
    call = asyncio.ensure_future(shttp.post({"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": SLOW_CALL}))
    await asyncio.wait_for(slow_tool.started.wait(), TIMEOUT)

    assert (await http(app, "DELETE", "/mcp", headers=shttp.headers())).status == 200
    shttp.session_id = None
    await asyncio.wait_for(slow_tool.cancelled.wait(), TIMEOUT)
    # The waiting POST ends too: with the engine's shutdown answer, or, should the session's
    # end reach it first, with the 404 of a session that is gone.
    answered = await asyncio.wait_for(call, TIMEOUT)
    if answered.status == 200:
        assert answered.json()["error"] == {"code": -32000, "message": "Connection closed"}
    else:
        assert answered.status == 404

    [row] = await records(SLOW_TOOL)
    assert row.outcome == ToolCall.Outcome.PROTOCOL_ERROR
    assert row.error_message == "Request cancelled"


async def test_a_legacy_sse_disconnect_cancels_the_sessions_running_calls(app, token, slow_tool):
    client = LegacySSEClient(app, token)
    await client.initialize()
    message = {"jsonrpc": "2.0", "id": 12, "method": "tools/call", "params": SLOW_CALL}
    assert (await client.post(message)).status == 202
    await asyncio.wait_for(slow_tool.started.wait(), TIMEOUT)

    await client.close()  # the stream drops: the session ends
    await asyncio.wait_for(slow_tool.cancelled.wait(), TIMEOUT)
    [row] = await records(SLOW_TOOL)
    assert row.outcome == ToolCall.Outcome.PROTOCOL_ERROR
    assert row.error_message == "Request cancelled"
    assert row.session_id == client.session_id


# -- shared through Redis ------------------------------------------------------------------------
@pytest.fixture
def redis_server(tmp_path):
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    yield redis
    redis.stop()


@pytest.mark.live
def test_two_workers_on_one_redis_count_a_tokens_calls_together(live_server_factory, redis_server):
    limit = {"REDIS_URL": redis_server.url, "MCP_TOOL_CALLS_PER_MINUTE": "3"}
    first = live_server_factory(**limit)
    second = live_server_factory(**limit, DATABASE_URL=first.env["DATABASE_URL"])  # one user and token table
    token = mint_token(first.env["DATABASE_URL"], first.username, [first.url, second.url])

    async def calls() -> list[dict]:
        replies = []
        async with McpWire(token) as wire:
            sessions = {server.url: await wire.initialize(server.url) for server in (first, second)}
            for server in (first, second, first, second, first):
                reply, _ = await wire.call(server.url, sessions[server.url], "tools/call", ADD)
                replies.append(reply)
        return replies

    replies = anyio.run(calls)
    for reply in replies[:3]:  # first, second, first: 3 calls of the token, across both workers
        assert_ok(reply)
    for reply in replies[3:]:  # each worker alone has seen at most 2: only a shared count refuses these
        assert reply["error"]["code"] == limits.RATE_LIMITED, reply
        expected = "Rate limit exceeded: 3 tools/call per minute for you through this client"
        assert reply["error"]["message"].startswith(expected)
