"""Refreshes sent at once with one refresh token, against a real daphne process on SQLite (the
same against two workers on PostgreSQL: tests/cluster/test_scale_out.py).

A client that retries a refresh after a time-out, or refreshes from two places, must not lose
its login: within ``MCP_REFRESH_GRACE_SECONDS`` every such request gets a working pair of
tokens; after it, reuse revokes the whole family; and no interleaving answers 500.
"""

import anyio
import httpx2
import pytest

from tests.support.interop_clients import obtain_token
from tests.support.wire_client import McpWire

pytestmark = [pytest.mark.live, pytest.mark.anyio]

AT_ONCE = 6  # refreshes sent together with the same refresh token


async def refresh_at_once(base: str, client_id: str, refresh_token: str, count: int = AT_ONCE) -> list[httpx2.Response]:
    """``count`` refreshes with ``refresh_token``, all sent before any answer is read."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    answers: list[httpx2.Response] = []
    async with httpx2.AsyncClient(trust_env=False, timeout=30) as http:

        async def one():
            answers.append(await http.post(base + "/token", data=form))

        async with anyio.create_task_group() as group:
            for _ in range(count):
                group.start_soon(one)
    return answers


async def works(base: str, access_token: str) -> bool:
    async with McpWire(access_token) as wire:
        reply = await wire.stateless_call(base, "tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}})
    return reply.get("result", {}).get("structuredContent") == {"result": 3}


@pytest.fixture(scope="module")
def server(live_server_template, tmp_path_factory):
    from tests.support.live_server import start_live_server

    started = start_live_server(live_server_template, tmp_path_factory.mktemp("live-refresh"))
    yield started
    started.stop()


async def test_simultaneous_refreshes_with_one_token_all_get_working_tokens(server):
    token = await obtain_token(server)
    answers = await refresh_at_once(server.url, token.client_id, token.refresh_token)
    assert [answer.status_code for answer in answers] == [200] * AT_ONCE, [a.text for a in answers]
    pairs = [answer.json() for answer in answers]
    assert len({pair["access_token"] for pair in pairs}) == AT_ONCE  # each its own pair
    for pair in pairs:
        assert await works(server.url, pair["access_token"])
    # Each line refreshes on: again all at once, each with its own new token.
    for pair in pairs[:2]:
        again = await refresh_at_once(server.url, token.client_id, pair["refresh_token"], 2)
        assert [answer.status_code for answer in again] == [200, 200]
    assert "Traceback" not in server.stderr()


async def test_after_the_grace_reuse_revokes_every_sibling_and_never_answers_500(server):
    import hashlib
    import sqlite3
    from datetime import UTC, datetime, timedelta

    token = await obtain_token(server)
    siblings = [answer.json() for answer in await refresh_at_once(server.url, token.client_id, token.refresh_token, 3)]
    # As if the grace had passed since the rotation (the test does not wait it out).
    past = (datetime.now(UTC) - timedelta(seconds=60)).strftime("%Y-%m-%d %H:%M:%S.%f")
    checksum = hashlib.sha256(token.refresh_token.encode()).hexdigest()
    update = "UPDATE oauth2_provider_refreshtoken SET revoked = ? WHERE token_checksum = ?"
    with sqlite3.connect(server.database) as database:
        database.execute(update, (past, checksum))
    answers = await refresh_at_once(server.url, token.client_id, token.refresh_token)
    assert {(answer.status_code, answer.json()["error"]) for answer in answers} == {(400, "invalid_grant")}
    for pair in siblings:
        assert not await works(server.url, pair["access_token"])
        again = await refresh_at_once(server.url, token.client_id, pair["refresh_token"], 1)
        assert again[0].status_code == 400
    assert "Traceback" not in server.stderr()
