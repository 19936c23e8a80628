"""Evidence for the scale-out tests: what PostgreSQL holds, which worker served which
session (from nginx's access log, tests/support/services.py), and bounded waits on both.

Every wait polls a condition against a deadline and fails saying what it last saw.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter

import anyio
import psycopg

from tests.support.services import Cluster, ProxiedRequest, Worker

POLL = 0.1  # seconds between two looks
LOG_BOUND = 5.0  # seconds for an access-log line to appear after its response ended


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------
def query(cluster: Cluster, sql: str, *params) -> list[tuple]:
    """Rows straight from the PostgreSQL database the workers share."""
    with psycopg.connect(cluster.database_url, connect_timeout=5) as connection:
        return connection.execute(sql, params).fetchall()


def tool_calls(cluster: Cluster, session_id: str) -> list[tuple[str, str]]:
    """(tool, outcome) of the audit trail's rows for one MCP session, oldest first."""
    return query(cluster, "SELECT tool, outcome FROM mcp_app_toolcall WHERE session_id = %s ORDER BY id", session_id)


def checksum(access_token: str) -> str:
    return hashlib.sha256(access_token.encode()).hexdigest()  # how DOT stores tokens (token_checksum)


# ---------------------------------------------------------------------------
# Bounded waits
# ---------------------------------------------------------------------------
async def eventually(probe, done, what: str, timeout: float):
    """Await `probe()` until `done(value)`; returns (value, seconds taken). Bounded by `timeout`."""
    started = time.monotonic()
    seen = []
    while True:
        value = await probe()
        seen.append(value)
        if done(value):
            return value, time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout}s; last values seen: {seen[-5:]}")
        await anyio.sleep(POLL)  # the poll interval of a bounded wait


async def logged(read, expected, what: str) -> None:
    """Wait until `read()` (lines of an access log) equals `expected`: a line is written when a
    response ends, which can be a moment after the client read the answer it waited for."""

    async def probe():
        return read()

    await eventually(probe, lambda value: value == expected, what, LOG_BOUND)


# ---------------------------------------------------------------------------
# nginx's access log: who served what
# ---------------------------------------------------------------------------
def sessions_opened(cluster: Cluster, since: int, *, agent_prefix: str) -> list[tuple[str, Worker]]:
    """Sessions created through nginx after line `since` of its access log by clients whose
    User-Agent starts with `agent_prefix`: (session id, the worker that created it)."""
    return [
        (line.session_out, cluster.worker_at(line.upstream))
        for line in cluster.nginx.access_log()[since:]
        if line.session_out and line.session_in is None and line.status == 200 and line.agent.startswith(agent_prefix)
    ]


def _session_of(line: ProxiedRequest) -> str | None:
    if line.target.startswith("/messages?sessionId="):
        return line.target.split("sessionId=", 1)[1]
    return line.session_in


def busiest_session(cluster: Cluster, since: int, *, agent_prefix: str = "") -> str:
    """The session with the most requests through nginx after line `since` of its access log
    (from clients whose User-Agent starts with `agent_prefix`): the one a client's calls went
    to (a client may open more than one, mcp-remote does)."""
    lines = cluster.nginx.access_log()[since:]
    sessions = [_session_of(line) for line in lines if line.agent.startswith(agent_prefix)]
    counted = Counter(session for session in sessions if session)
    assert counted, "no session requests in nginx's access log"
    return counted.most_common(1)[0][0]


def workers_that_served(cluster: Cluster, session_id: str) -> set[str]:
    """The workers nginx sent requests of `session_id` to (by header, or by /messages?sessionId=)."""
    return {
        cluster.worker_at(line.upstream).name for line in cluster.nginx.access_log() if _session_of(line) == session_id
    }


def owner_of(cluster: Cluster, session_id: str) -> Worker:
    """The worker that issued `session_id`: its route (MCP_WORKER_ROUTE, the port) leads the id."""
    route = session_id.split(".", 1)[0]
    (owner,) = [worker for worker in cluster.workers if str(worker.port) == route]
    return owner
