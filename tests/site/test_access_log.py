"""The access log of `python -m mcpsite.serve` (how `make run` and the systemd unit run daphne)
never holds a credential sent in a query string, and is daphne's own, a loop turn's lines at a time."""

import asyncio
import io
from datetime import datetime

import httpx2
import pytest
from daphne.access import AccessLogGenerator

from mcpsite.serve import AccessLog, RedactingServer, redact_path
from tests.support.live_server import start_live_server

ENTRY = {"host": "127.0.0.1:5555", "request": "POST /mcp", "status": 200, "length": 123}


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/mcp", "/mcp"),
        ("/authorize?client_id=abc&state=xyz", "/authorize?client_id=abc&state=xyz"),
        ("/mcp?access_token=s3cret", "/mcp?access_token=[redacted]"),
        ("/callback?code=c0de&state=x&iss=http%3A%2F%2Fh", "/callback?code=[redacted]&state=x&iss=http%3A%2F%2Fh"),
        ("/x?Refresh_Token=r&client_secret=s&a=", "/x?Refresh_Token=[redacted]&client_secret=[redacted]&a="),
    ],
)
def test_redact_path(path, expected):
    assert redact_path(path) == expected


def test_the_lines_are_daphnes_own():
    ours, theirs = io.StringIO(), io.StringIO()
    log, daphnes = AccessLog(ours), AccessLogGenerator(theirs)
    for when in (
        datetime(2026, 12, 3, 9, 5, 7, 1),
        datetime(2026, 12, 3, 9, 5, 7, 900_000),
        datetime(2026, 12, 3, 9, 5, 8),
    ):
        log.write_entry(date=when, **ENTRY)  # outside a loop: written at once; the stamp kept for a second
        daphnes.write_entry(date=when, **ENTRY)
    assert ours.getvalue() == theirs.getvalue()
    assert ours.getvalue().count("\n") == 3


@pytest.mark.anyio
async def test_a_turns_lines_are_written_together_at_its_end():
    stream = io.StringIO()
    log = AccessLog(stream)
    log("http", "complete", {"client": "127.0.0.1:1", "method": "GET", "path": "/healthz", "status": 200, "size": 2})
    log(
        "http",
        "complete",
        {"client": "127.0.0.1:2", "method": "POST", "path": "/mcp?code=c0de", "status": 400, "size": 9},
    )
    assert stream.getvalue() == ""
    turn_over = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(turn_over.set_result, None)  # after the flush scheduled above
    await turn_over
    lines = stream.getvalue().splitlines()
    assert [line.split('"')[1] for line in lines] == ["GET /healthz", "POST /mcp?code=[redacted]"]


def test_another_action_logger_gets_redacted_paths():
    seen = []
    server = RedactingServer(
        application=None, endpoints=["tcp:port=0:interface=127.0.0.1"], action_logger=lambda *entry: seen.append(entry)
    )
    server.log_action("http", "complete", {"path": "/callback?code=c0de&state=x", "status": 302})
    assert seen == [("http", "complete", {"path": "/callback?code=[redacted]&state=x", "status": 302})]


@pytest.mark.live
def test_a_token_in_the_query_string_is_refused_and_not_in_the_access_log(live_server_template, tmp_path):
    server = start_live_server(live_server_template, tmp_path)
    try:
        secret = "q" * 40
        response = httpx2.post(f"{server.url}/mcp?access_token={secret}", json={}, timeout=10, trust_env=False)
        assert response.status_code in (400, 401)
        ok = httpx2.get(f"{server.url}/healthz", timeout=10, trust_env=False)
        assert ok.status_code == 200
    finally:
        server.stop()
    access_log = (tmp_path / "daphne.stdout").read_text()
    assert '"GET /healthz" 200' in access_log  # the access log is on, and complete once stopped
    assert "/mcp?access_token=[redacted]" in access_log
    assert secret not in access_log and secret not in server.stderr()
