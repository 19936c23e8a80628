"""The audit trail of a real daphne process that answers before the commit
(``MCP_AUDIT_WAIT_FOR_COMMIT=0``): calls answered while their rows cannot be written yet are
all in the trail once the server has stopped on SIGTERM."""

import signal
import sqlite3

import anyio
import pytest

from tests.support.live_server import STOP_TIMEOUT, mint_token
from tests.support.services import wait_until
from tests.support.wire_client import McpWire

pytestmark = pytest.mark.live

CALLS = 3


async def _calls(server, token: str) -> list[dict]:
    async with McpWire(token) as wire:
        session = await wire.initialize(server.url)
        replies = []
        for number in range(CALLS):
            params = {"name": "add", "arguments": {"a": number, "b": 1}}
            reply, _ = await wire.call(server.url, session, "tools/call", params)
            replies.append(reply)
        return replies


def _audit_rows(database) -> int:
    with sqlite3.connect(database) as reader:
        return reader.execute("SELECT count(*) FROM mcp_app_toolcall WHERE tool = 'add'").fetchone()[0]


def test_rows_answered_before_their_commit_are_written_when_the_server_stops(live_server_factory):
    server = live_server_factory(MCP_AUDIT_WAIT_FOR_COMMIT="0")
    token = mint_token(server.env["DATABASE_URL"], server.username, [server.url])
    lock = sqlite3.connect(server.database, isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")  # holds SQLite's write lock: the server's audit writes wait for it
        replies = anyio.run(_calls, server, token)
        assert [reply["result"]["structuredContent"] for reply in replies] == [{"result": n + 1} for n in range(CALLS)]
        assert _audit_rows(server.database) == 0  # answered, not yet written

        server.process.send_signal(signal.SIGTERM)
        wait_until(
            lambda: f"waiting for {CALLS} audit rows to be written" in server.stderr(),
            "the stopping server waits for its uncommitted rows",
            timeout=STOP_TIMEOUT,
            process=server.process,
        )
    finally:
        lock.close()  # the write goes on, and the server with its shutdown
    assert server.process.wait(timeout=STOP_TIMEOUT) == 0
    assert _audit_rows(server.database) == CALLS
    assert "Traceback" not in server.stderr()
