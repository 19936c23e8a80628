"""A session's engine sleeps while the session is idle and wakes for its next message
(``sessions/session.py``): while it sleeps nothing of its loop is left, and nothing of the
session is lost: not the handshake, not the client's state, not what the server sends it.

The idle time is cut to a hundredth of a second here; every wait is on an event or a
finished task, bounded by TIMEOUT.
"""

import asyncio
import gc
import json
from collections import Counter

import pytest

from mcp_app.cluster import directory
from mcp_app.engine import connected
from mcp_app.engine.list_changed import announce_list_changed
from mcp_app.sessions import session as session_module
from tests.support.asgi_client import (
    TIMEOUT,
    LegacySSEClient,
    StreamableHTTPClient,
    close_stream,
    open_get_stream,
    parse_events,
    read_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio, pytest.mark.usefixtures("worker")]

ADD = {"name": "add", "arguments": {"a": 2, "b": 3}}


@pytest.fixture(autouse=True)
def quick_sleep(monkeypatch):
    monkeypatch.setattr(session_module, "ENGINE_IDLE_SECONDS", 0.01)


def session_of(session_id: str) -> session_module.MCPSession:
    return directory.this_worker._sessions[session_id]


async def asleep(session: session_module.MCPSession) -> None:
    """Wait until the session's engine loop has ended by going to sleep."""
    engine = session._engine
    if engine is not None:
        await asyncio.wait_for(asyncio.shield(engine), TIMEOUT)
    assert session._inbound is None and session._dispatcher is None and session._engine is None
    assert not session.closed.is_set()


async def asleep_with_its_stream(app, token):
    """A new session with its GET stream open, once its engine sleeps."""
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    session = session_of(client.session_id)
    stream = await open_get_stream(app, "/mcp", client.headers(accept="text/event-stream"))
    await asleep(session)
    return client, session, stream


def loop_objects() -> Counter:
    watched = ("JSONRPCDispatcher", "ServerRunner", "_EngineOutput")
    return Counter(name for o in gc.get_objects() if (name := type(o).__name__) in watched)


async def test_an_idle_session_sleeps_and_its_next_requests_find_the_handshake_kept(app, token):
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    session = session_of(client.session_id)
    await asleep(session)
    state, connection = session._client_state, session._connection
    assert (await client.request("logging/setLevel", {"level": "error"}))["result"] == {}
    for _ in range(3):  # each round: asleep, then woken by a request that needs the handshake done
        await asleep(session)
        assert session._client_state is state and session._connection is connection
        assert state.log_level == "error" and connection.client_params.client_info.name
        listed = await client.request("tools/list")
        assert "add" in [tool["name"] for tool in listed["result"]["tools"]]
        reply = await client.request("tools/call", ADD)
        assert reply["result"]["structuredContent"]["result"] == 5
    await client.close()
    assert session.closed.is_set()


async def test_a_sleeping_engine_leaves_nothing_of_its_loop_behind(app, token):
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    await client.request("tools/call", ADD)
    session = session_of(client.session_id)
    await asleep(session)
    gc.collect()
    before = loop_objects()
    gc.disable()  # what the loops leave must go by reference counting alone
    try:
        for _ in range(5):
            await client.request("tools/call", ADD)
            await asleep(session)
        left = loop_objects() - before
    finally:
        gc.enable()
    assert not left, f"left by five loops that went to sleep: {dict(left)}"
    await client.close()


async def test_the_server_reaches_a_sleeping_sessions_stream_without_waking_it(app, token):
    client, session, stream = await asleep_with_its_stream(app, token)
    assert await announce_list_changed("tools") >= 1
    raw = await read_until(stream, lambda seen: b"notifications/tools/list_changed" in seen)
    messages = [json.loads(event["data"]) for event in parse_events(raw) if event.get("data")]
    assert {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"} in messages
    assert session._inbound is None and session._engine is None  # still asleep
    await close_stream(stream)
    await client.close()


async def test_a_running_call_keeps_the_engine_awake_until_it_is_answered(app, token, blocking_tool, monkeypatch):
    _started, release = blocking_tool
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    session = session_of(client.session_id)
    looked = asyncio.Event()
    looks = 0
    sleep_if_idle = session_module.MCPSession._sleep_if_idle

    def counting(self):
        nonlocal looks
        sleep_if_idle(self)
        if self is session and self._running:
            looks += 1
            if looks >= 3:
                looked.set()

    monkeypatch.setattr(session_module.MCPSession, "_sleep_if_idle", counting)
    call = asyncio.create_task(client.request("tools/call", {"name": "test_wait_for_release", "arguments": {}}))
    await asyncio.wait_for(looked.wait(), TIMEOUT)  # idle long past the limit, three looks, still running
    assert session._inbound is not None and session._dispatcher is not None
    release.set()
    reply = await asyncio.wait_for(call, TIMEOUT)
    assert reply["result"]["content"][0]["text"] == "released"
    await asleep(session)  # answered: now it sleeps
    await client.close()


async def test_a_request_to_the_client_wakes_a_sleeping_engine_and_gets_its_answer(app, token):
    client, session, stream = await asleep_with_its_stream(app, token)
    ping = asyncio.create_task(session._connection.send_raw_request("ping", None))
    raw = await read_until(stream, lambda seen: b'"ping"' in seen)
    request = next(
        message
        for event in parse_events(raw)
        if event.get("data") and (message := json.loads(event["data"])).get("method") == "ping"
    )
    answered = await client.post({"jsonrpc": "2.0", "id": request["id"], "result": {}})
    assert answered.status == 202
    assert await asyncio.wait_for(ping, TIMEOUT) == {}
    await asleep(session)
    await close_stream(stream)
    await client.close()


async def test_a_legacy_session_sleeps_between_messages_too(app, token):
    client = LegacySSEClient(app, token)
    await client.initialize()
    session = next(s for s in directory.this_worker._sessions.values() if s.transport == "sse")
    for _ in range(2):
        await asleep(session)
        reply = await client.request("tools/call", ADD)
        assert reply["result"]["structuredContent"]["result"] == 5
    await client.close()
    await asyncio.wait_for(session.closed.wait(), TIMEOUT)


async def test_closing_a_sleeping_session_ends_its_client_state(app, token):
    client = StreamableHTTPClient(app, token)
    await client.initialize()
    session = session_of(client.session_id)
    await asleep(session)  # notifications/initialized handled, then nothing more to do
    state = session._client_state
    assert state in connected._live and state.reachable and state.connection is session._connection
    await client.close()
    assert session.closed.is_set()
    assert state not in connected._live and session._connection is None
    assert client.session_id not in directory.this_worker._sessions
