"""Memory a client can make the server hold, bounded in bytes (issue "Bounded under abuse").

The session event log is bounded by count, by bytes per session and by bytes per process;
errors that echo the client's input echo a short prefix of it. The live measurement of the
hostile case (30 requests with a 3.9 MB URI) is tests/live/test_bounds_live.py.
"""

import json

import pytest
from mcp_types import JSONRPCNotification, JSONRPCResponse

from mcp_app.engine.echo import ECHO_CHARS
from mcp_app.sessions.event_log import EventLog, ProcessBudget
from tests.support.asgi_client import TIMEOUT, StreamableHTTPClient, close_stream, initialize_message, send_request

KIB = 1024


def _answer(request_id: int, size: int) -> JSONRPCResponse:
    return JSONRPCResponse(jsonrpc="2.0", id=request_id, result={"text": "x" * size})


def test_the_log_keeps_at_most_its_bytes_dropping_the_oldest():
    log = EventLog(capacity=1000, max_bytes=100 * KIB, process_bytes=1 << 30, budget=ProcessBudget())
    events = [log.append("r1", _answer(n, 30 * KIB)) for n in range(10)]
    assert log.bytes <= 100 * KIB
    kept = log.after("r1.0")[1]
    assert [event.id for event in kept] == [event.id for event in events[-3:]]  # the newest, in order
    assert json.loads(kept[-1].data)["id"] == 9


def test_an_event_larger_than_the_bound_is_delivered_but_not_kept():
    log = EventLog(capacity=1000, max_bytes=10 * KIB, process_bytes=1 << 30, budget=ProcessBudget())
    event = log.append("s", _answer(1, 50 * KIB))
    assert len(event.data) > 50 * KIB and event.is_reply  # what the transport sends
    assert log.bytes == 0 and log.after("s.0")[1] == []


def test_all_sessions_of_a_process_share_a_byte_budget():
    budget = ProcessBudget()
    first, second = (EventLog(1000, 1 << 20, 100 * KIB, budget) for _ in range(2))
    for n in range(3):
        first.append("s", _answer(n, 30 * KIB))  # 90+ KiB: under the process's 100
    for n in range(3):
        second.append("s", _answer(n, 30 * KIB))  # over: this log keeps only its newest
    assert len(second.after("s.0")[1]) == 1
    assert budget.used == first.bytes + second.bytes <= 100 * KIB + 31 * KIB
    second.clear()
    first.clear()
    assert budget.used == 0


def test_the_log_still_bounds_the_count():
    log = EventLog(capacity=3, max_bytes=1 << 20, process_bytes=1 << 30, budget=ProcessBudget())
    for n in range(5):
        log.append("s", JSONRPCNotification(jsonrpc="2.0", method="notifications/message", params={"n": n}))
    assert [event.id for event in log.after("s.0")[1]] == ["s.3", "s.4", "s.5"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.anyio
@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("resources/read", {"uri": "test://" + "u" * 500_000}),
        ("prompts/get", {"name": "p" * 500_000}),
        ("tools/call", {"name": "t" * 500_000, "arguments": {}}),
        ("m" * 500_000, {}),
    ],
    ids=["resource-uri", "prompt-name", "tool-name", "method-name"],
)
async def test_errors_echo_a_short_prefix_of_what_was_sent(app, token, method, params):
    client = StreamableHTTPClient(app, token)
    try:
        await client.initialize()
        reply = await client.request(method, params)
    finally:
        await client.close()
    error = reply["error"]
    assert len(json.dumps(error)) < 2 * ECHO_CHARS + 200, str(error)[:300]
    assert error["code"] in (-32601, -32602)


# -- what one person may hold open ------------------------------------------------------------
def _refused_for(reply_status: int, body: dict, setting: str, limit: int) -> None:
    assert reply_status == 429, body
    assert body["error"]["code"] == -32031
    assert body["error"]["data"] == {"limit": setting, "max": limit}
    assert setting in body["error"]["message"]


@pytest.fixture
def tokens_of_alice(user):
    """Two tokens of one person, through two OAuth clients."""
    from tests.support.mcp_fixtures import _token_for

    return _token_for(user), _token_for(user)


@pytest.mark.django_db(transaction=True)
@pytest.mark.anyio
@pytest.mark.usefixtures("worker")
async def test_one_person_cannot_take_the_whole_pool(app, tokens_of_alice, other_token, settings):
    settings.MCP_MAX_SESSIONS, settings.MCP_MAX_SESSIONS_PER_USER, settings.MCP_MAX_SESSIONS_PER_TOKEN = 40, 3, 2
    first, second = tokens_of_alice
    opened = [StreamableHTTPClient(app, first), StreamableHTTPClient(app, first)]
    try:
        for client in opened:
            await client.initialize()
        by_token = await StreamableHTTPClient(app, first).post(initialize_message())  # the token's third
        _refused_for(by_token.status, by_token.json(), "MCP_MAX_SESSIONS_PER_TOKEN", 2)
        opened.append(StreamableHTTPClient(app, second))
        await opened[-1].initialize()
        by_person = await StreamableHTTPClient(app, second).post(initialize_message())  # the person's fourth
        _refused_for(by_person.status, by_person.json(), "MCP_MAX_SESSIONS_PER_USER", 3)
        legacy = await send_request(app, "GET", "/sse", headers={"accept": "text/event-stream", **_bearer(second)})
        start = await legacy.receive_output(TIMEOUT)
        body = json.loads((await legacy.receive_output(TIMEOUT))["body"])
        _refused_for(start["status"], body, "MCP_MAX_SESSIONS_PER_USER", 3)
        someone_else = StreamableHTTPClient(app, other_token)
        await someone_else.initialize()  # the pool is not taken
        await someone_else.close()
        await opened.pop().close()  # a session ends: its person may open one again
        again = StreamableHTTPClient(app, second)
        await again.initialize()
        opened.append(again)
    finally:
        for client in opened:
            await client.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.anyio
@pytest.mark.usefixtures("worker")
async def test_one_person_holds_a_bounded_number_of_listen_streams(app, token, other_token, settings):
    from tests.mcp.test_stateless import _open_listen, post, stateless_request

    settings.MCP_MAX_LISTEN_STREAMS_PER_USER = 2
    streams = [await _open_listen(app, token, {"toolsListChanged": True}) for _ in range(2)]
    try:
        message = stateless_request("subscriptions/listen", {"notifications": {"toolsListChanged": True}})
        refused = await post(app, token, message)
        _refused_for(refused.status, refused.json(), "MCP_MAX_LISTEN_STREAMS_PER_USER", 2)
        streams.append(await _open_listen(app, other_token, {"toolsListChanged": True}))  # others are not held up
        await close_stream(streams.pop(0))
        streams.append(await _open_listen(app, token, {"toolsListChanged": True}))  # a slot came free
    finally:
        for stream in streams:
            await close_stream(stream)


def _bearer(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}
