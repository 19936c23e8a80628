"""Tasks on a real daphne process: a long call outlives its request, the client's connection
and the per-call time limit, and is followed from a new connection until it ends.

The server runs with ``MCP_TOOL_CALL_TIMEOUT_SECONDS=1`` and the demo tool ``countdown`` is
asked for 4 s: without a task the call is cut short; as a task it counts to the end while
the client that started it is gone, and its status message says how far it got. (The tool
takes two minutes by default; the same code path at 4 s keeps the suite quick.)
"""

import anyio
import pytest

from tests.support.interop_clients import obtain_token
from tests.support.scale_out_evidence import eventually
from tests.support.wire_client import TASKS_CAPABILITIES, McpWire

pytestmark = [pytest.mark.live, pytest.mark.anyio]

CALL_TIMEOUT = 1  # seconds: MCP_TOOL_CALL_TIMEOUT_SECONDS of the server
COUNTDOWN = 4  # seconds the countdown is asked for: longer than a call may take
BOUND = COUNTDOWN + 10  # seconds to see the task end, with room for a loaded machine


@pytest.fixture(scope="module")
def server(live_server_template, tmp_path_factory):
    from tests.support.live_server import start_live_server

    started = start_live_server(
        live_server_template, tmp_path_factory.mktemp("live-tasks"), MCP_TOOL_CALL_TIMEOUT_SECONDS=str(CALL_TIMEOUT)
    )
    yield started
    started.stop()


@pytest.fixture(scope="module")
def token(server):
    return anyio.run(obtain_token, server).access_token


async def test_a_long_call_runs_on_as_a_task_after_its_client_left(server, token):
    countdown = {"name": "countdown", "arguments": {"seconds": COUNTDOWN}}
    async with McpWire(token) as wire:  # without tasks: the call is cut at the time limit
        cut = await wire.stateless_call(server.url, "tools/call", countdown)
    assert cut["result"]["isError"] is True
    assert cut["result"]["content"][0]["text"] == f"Tool call timed out after {CALL_TIMEOUT} s"

    async with McpWire(token) as starter:  # its connection closes when this block ends
        created = (await starter.stateless_call(server.url, "tools/call", countdown, TASKS_CAPABILITIES))["result"]
    assert created["resultType"] == "task" and created["status"] == "working"

    seen = []
    async with McpWire(token) as follower:  # another connection, later

        async def probe():
            reply = await follower.stateless_call(
                server.url, "tasks/get", {"taskId": created["taskId"]}, TASKS_CAPABILITIES
            )
            seen.append(reply["result"].get("statusMessage"))
            return reply["result"]

        done, _ = await eventually(probe, lambda task: task["status"] != "working", "the countdown's end", BOUND)
    assert done["status"] == "completed", done
    assert done["result"]["content"][0]["text"] == f"Countdown from {COUNTDOWN} s finished."
    assert any(message and message.endswith(f"of {COUNTDOWN})") for message in seen), seen  # its progress
    assert "Traceback" not in server.stderr()
