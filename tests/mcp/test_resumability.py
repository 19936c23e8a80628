"""Resumability (MCP 2025-11-25, Streamable HTTP "Resumability and Redelivery"):
SSE events carry ids, a priming event opens each stream, and a GET with
`Last-Event-ID` replays what the client missed on that stream, and only that stream."""

import asyncio
import json

import pytest

from mcp_app.cluster import directory
from tests.support.asgi_client import (
    TIMEOUT,
    StreamableHTTPClient,
    close_stream,
    http,
    open_get_stream,
    parse_events,
    read_until,
    send_request,
    start_call,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio, pytest.mark.usefixtures("worker")]


@pytest.fixture
def stepping_tool():
    """A tool that reports progress, then waits for the test before answering (no sleeps)."""
    from mcp.server.mcpserver import Context

    from mcp_app.engine.server import get_mcp_server

    release = asyncio.Event()

    async def step_then_wait(ctx: Context) -> str:
        await ctx.report_progress(1, 2, "halfway")
        await release.wait()
        return "done"

    async def announce(ctx: Context) -> str:
        # Not about this request: goes to the session's standalone stream.
        await ctx.request_context.session.send_log_message("info", "announcement")
        return "announced"

    server = get_mcp_server()
    server.add_tool(step_then_wait, name="test_step_then_wait")
    server.add_tool(announce, name="test_announce")
    yield release
    release.set()
    server.remove_tool("test_step_then_wait")
    server.remove_tool("test_announce")


async def until(predicate) -> None:
    """Yield to the event loop until `predicate` holds (callers bound it with a timeout)."""
    while not predicate():
        await asyncio.sleep(0)


async def test_a_request_stream_is_primed_and_its_events_carry_ids(app, token, stepping_tool):
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    post = await start_call(app, client, "test_step_then_wait", 5)
    raw = await read_until(post, lambda b: b"halfway" in b)
    priming, progress = parse_events(raw)
    assert priming["data"] == "" and priming["id"] and int(priming["retry"]) >= 0
    assert progress["id"] and progress["id"] != priming["id"]
    stepping_tool.set()
    raw = await read_until(post, lambda b: b'"done"' in b, raw)
    reply = parse_events(raw)[-1]
    assert json.loads(reply["data"])["id"] == 5
    assert len({event["id"] for event in parse_events(raw)}) == 3  # unique within the session
    await post.wait(TIMEOUT)
    await client.close()


async def test_a_dropped_request_stream_resumes_with_what_was_missed(app, token, stepping_tool):
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    post = await start_call(app, client, "test_step_then_wait", 6)
    raw = await read_until(post, lambda b: b"halfway" in b)
    last_seen = parse_events(raw)[-1]["id"]
    await close_stream(post)  # the connection drops mid-call; the call goes on
    stepping_tool.set()

    resumed = await http(
        app, "GET", "/mcp", headers=client.headers(accept="text/event-stream", **{"last-event-id": last_seen})
    )
    assert resumed.status == 200
    events = parse_events(resumed.body)
    assert [json.loads(e["data"])["result"]["structuredContent"] for e in events] == [{"result": "done"}]
    assert json.loads(events[0]["data"])["id"] == 6
    await client.close()


async def test_the_standalone_stream_resumes_from_its_priming_id(app, token, stepping_tool):
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    stream = await open_get_stream(app, "/mcp", client.headers(accept="text/event-stream"))
    raw = await read_until(stream, lambda b: b"\n\n" in b)
    priming = parse_events(raw)[0]
    assert priming["data"] == "" and priming["id"].startswith("s.")
    await close_stream(stream)

    # While no GET stream is open, the server says something to the session.
    assert (await client.request("tools/call", {"name": "test_announce", "arguments": {}}))["result"][
        "structuredContent"
    ]

    stream = await open_get_stream(
        app, "/mcp", client.headers(accept="text/event-stream", **{"last-event-id": priming["id"]})
    )
    raw = await read_until(stream, lambda b: b"announcement" in b)
    (missed,) = parse_events(raw)
    assert json.loads(missed["data"])["method"] == "notifications/message"
    await close_stream(stream)
    await client.close()


async def test_replay_never_crosses_streams(app, token, stepping_tool):
    """Events of a request's stream are not replayed on the standalone stream, nor the other way."""
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    stream = await open_get_stream(app, "/mcp", client.headers(accept="text/event-stream"))
    priming = parse_events(await read_until(stream, lambda b: b"\n\n" in b))[0]
    await close_stream(stream)
    stepping_tool.set()
    reply = await client.request(
        "tools/call", {"name": "test_step_then_wait", "arguments": {}, "_meta": {"progressToken": 1}}
    )
    assert reply["result"]["structuredContent"] == {"result": "done"}
    stream = await open_get_stream(
        app, "/mcp", client.headers(accept="text/event-stream", **{"last-event-id": priming["id"]})
    )
    # The progress and the reply were logged on the request's own stream: the replay of the
    # standalone stream has nothing to send, so the first thing it carries is the next announcement.
    await client.request("tools/call", {"name": "test_announce", "arguments": {}})
    events = parse_events(await read_until(stream, lambda b: b"announcement" in b))
    assert [json.loads(e["data"]).get("method") for e in events] == ["notifications/message"]
    await close_stream(stream)
    await client.close()


@pytest.mark.parametrize("last_event_id", ["nonsense", "s.999999", "r9999.1", "x" * 200])
async def test_unknown_last_event_id_is_400(app, token, last_event_id):
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    result = await http(
        app, "GET", "/mcp", headers=client.headers(accept="text/event-stream", **{"last-event-id": last_event_id})
    )
    assert result.status == 400
    await client.close()


async def test_the_event_log_is_bounded(app, token, settings, stepping_tool):
    settings.MCP_EVENT_LOG_SIZE = 3
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    for _ in range(5):
        await client.request("tools/call", {"name": "test_announce", "arguments": {}})
    session = directory.this_worker._sessions[client.session_id]
    assert len(session.events._events) == 3
    await client.close()


async def test_resuming_through_another_worker(app, token, stepping_tool, monkeypatch):
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    post = await start_call(app, client, "test_step_then_wait", 8)
    last_seen = parse_events(await read_until(post, lambda b: b"halfway" in b))[-1]["id"]
    await close_stream(post)
    monkeypatch.setattr(directory, "this_worker", directory.SessionDirectory())  # the reconnect lands on worker 2
    stepping_tool.set()
    resumed = await http(
        app, "GET", "/mcp", headers=client.headers(accept="text/event-stream", **{"last-event-id": last_seen})
    )
    assert resumed.status == 200
    (reply,) = parse_events(resumed.body)
    assert json.loads(reply["data"])["id"] == 8
    bad = await http(
        app, "GET", "/mcp", headers=client.headers(accept="text/event-stream", **{"last-event-id": "s.99999"})
    )
    assert bad.status == 400
    await client.close()


@pytest.fixture
def polling_tool():
    """A long call whose tool ends its SSE stream at once (polling) and answers later."""
    from mcp.server.mcpserver import Context

    from mcp_app.engine.server import get_mcp_server

    release = asyncio.Event()

    async def answer_later(ctx: Context) -> str:
        await ctx.close_sse_stream()
        await release.wait()
        return "later"

    server = get_mcp_server()
    server.add_tool(answer_later, name="test_answer_later")
    yield release
    release.set()
    server.remove_tool("test_answer_later")


async def test_a_tool_can_end_its_stream_and_answer_on_the_resumed_one(app, token, polling_tool):
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    result = await client.post(
        {"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": {"name": "test_answer_later", "arguments": {}}}
    )
    assert result.headers["content-type"].startswith("text/event-stream")
    (priming,) = parse_events(result.body)  # the stream ends right after its priming event
    assert priming["data"] == "" and "retry" in priming
    polling_tool.set()
    resumed = await http(
        app, "GET", "/mcp", headers=client.headers(accept="text/event-stream", **{"last-event-id": priming["id"]})
    )
    (reply,) = parse_events(resumed.body)
    assert json.loads(reply["data"]) == {"jsonrpc": "2.0", "id": 11, "result": json.loads(reply["data"])["result"]}
    assert json.loads(reply["data"])["result"]["structuredContent"] == {"result": "later"}
    await client.close()


async def test_a_cancelled_request_ends_its_post_and_frees_its_id(app, token, stepping_tool):

    client = StreamableHTTPClient(app, token)
    await client.initialize()
    call = json.dumps(
        {"jsonrpc": "2.0", "id": 21, "method": "tools/call", "params": {"name": "test_step_then_wait", "arguments": {}}}
    ).encode()
    post = await send_request(app, "POST", "/mcp", call, client.headers(accept="application/json"))
    session = directory.this_worker._sessions[client.session_id]
    await asyncio.wait_for(until(lambda: 21 in session._pending), TIMEOUT)  # delivered: the call is running
    cancelled = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 21, "reason": "test"}}
    assert (await client.post(cancelled)).status == 202
    start = await post.receive_output(TIMEOUT)
    body = (await post.receive_output(TIMEOUT))["body"]
    assert start["status"] == 200
    assert json.loads(body)["error"]["code"] == -32800
    assert 21 not in session._pending
    # The id is free again.
    again = await client.post({"jsonrpc": "2.0", "id": 21, "method": "ping"})
    assert again.status == 200 and again.json()["result"] == {}
    await client.close()
