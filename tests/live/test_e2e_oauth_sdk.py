"""End to end: the `mcp` SDK's own OAuth client against a real daphne server.

The SDK's OAuthClientProvider does discovery (RFC 9728 then RFC 8414), dynamic
registration (RFC 7591), the authorization request with PKCE and `resource`,
the code exchange and the refresh, exactly as an MCP client would; a headless
browser logs in and answers the consent page in between. The flow starts the
way it does for every client: an MCP initialize to /mcp answered 401.
"""

from urllib.parse import urlencode

import anyio
import httpx2
import pytest

from tests.support.browser import HeadlessBrowser
from tests.support.sdk_oauth import (
    REDIRECT_URI,
    AuthorizationDenied,
    ExchangeLog,
    MemoryTokenStorage,
    initialize,
    mcp_http_client,
    oauth_provider,
    query_of,
    wait_until_expired,
)

pytestmark = [pytest.mark.live, pytest.mark.anyio]

TOKEN_TTL = 3
FLOW = [
    ("POST", "/mcp", 401),
    ("GET", "/.well-known/oauth-protected-resource", 200),
    ("GET", "/.well-known/oauth-authorization-server", 200),
    ("POST", "/register", 201),
    ("POST", "/token", 200),
    ("POST", "/mcp", 200),  # the original request, retried with the new token
]


def steps(log: ExchangeLog) -> list[tuple[str, str, int]]:
    return [(e.method, e.path, e.status) for e in log.exchanges]


async def test_sdk_client_obtains_a_token(live_server):
    log, storage = ExchangeLog(), MemoryTokenStorage()
    async with HeadlessBrowser(live_server.username, live_server.password) as browser:
        provider = oauth_provider(live_server, browser, storage=storage)
        async with mcp_http_client(live_server, provider, log=log) as http:
            response = await initialize(http, live_server)
    assert response.status_code == 200, response.text
    assert steps(log) == FLOW

    (registration,) = log.to("POST", "/register")
    registered = registration.response_json()
    assert registration.request_json()["token_endpoint_auth_method"] == "none"
    assert registered["token_endpoint_auth_method"] == "none"  # a public client...
    assert not registered.get("client_secret")  # ...holds no secret
    assert storage.client_info.client_id == registered["client_id"]

    (authorization_url,) = browser.visited
    authorize = query_of(authorization_url)
    assert authorization_url.startswith(live_server.url + "/authorize?")
    assert authorize["client_id"] == registered["client_id"]
    assert authorize["redirect_uri"] == REDIRECT_URI
    assert authorize["code_challenge_method"] == "S256"
    assert len(authorize["code_challenge"]) == 43  # base64url SHA-256
    assert authorize["resource"].rstrip("/") == live_server.url  # RFC 8707: the PRM resource
    assert authorize["scope"] == "mcp"
    (redirect,) = browser.redirects
    assert query_of(redirect)["iss"] == live_server.url  # RFC 9207 (the SDK checks it too)

    (exchange,) = log.to("POST", "/token")
    sent = exchange.form()
    assert sent["grant_type"] == "authorization_code"
    assert sent["code_verifier"] and "client_secret" not in sent
    assert sent["resource"] == authorize["resource"]
    token = exchange.response_json()
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "mcp"
    assert token["expires_in"] == 3600  # MCP_ACCESS_TOKEN_TTL default
    assert token["access_token"] and token["refresh_token"]
    assert storage.tokens.access_token == token["access_token"]


async def test_denied_consent_reaches_the_client_as_an_error(live_server):
    log = ExchangeLog()
    async with HeadlessBrowser(live_server.username, live_server.password) as browser:
        provider = oauth_provider(live_server, browser, decision="deny")
        async with mcp_http_client(live_server, provider, log=log) as http:
            with pytest.raises(AuthorizationDenied) as denied:
                await initialize(http, live_server)
    query = denied.value.query
    assert query["error"] == "access_denied"
    assert query["state"] == query_of(browser.visited[0])["state"]
    assert query["iss"] == live_server.url  # RFC 9207 §2: on error responses too
    assert log.to("POST", "/token") == []


async def test_sdk_client_refreshes_and_the_old_refresh_token_is_dead(live_server_factory):
    # Short enough to wait out, long enough that a loaded machine does not expire it before first use.
    # The retry grace off: the replay below comes right after the rotation (the grace is
    # tests/live/test_refresh_retries_live.py's).
    server = live_server_factory(MCP_ACCESS_TOKEN_TTL=str(TOKEN_TTL), MCP_REFRESH_GRACE_SECONDS="0")
    log, storage = ExchangeLog(), MemoryTokenStorage()
    async with HeadlessBrowser(server.username, server.password) as browser:
        provider = oauth_provider(server, browser, storage=storage)
        async with mcp_http_client(server, provider, log=log) as http:
            assert (await initialize(http, server)).status_code == 200
            first = storage.tokens
            assert first.expires_in == TOKEN_TTL
            await wait_until_expired(provider)
            response = await initialize(http, server)
    assert response.status_code == 200, response.text
    assert steps(log) == [*FLOW, ("POST", "/token", 200), ("POST", "/mcp", 200)]

    refresh = log.to("POST", "/token")[1]
    sent = refresh.form()
    assert sent["grant_type"] == "refresh_token"
    assert sent["refresh_token"] == first.refresh_token
    assert sent["client_id"] == storage.client_info.client_id and "client_secret" not in sent
    assert sent["resource"].rstrip("/") == server.url
    renewed = refresh.response_json()
    assert renewed["token_type"] == "Bearer" and renewed["scope"] == "mcp" and renewed["expires_in"] == TOKEN_TTL
    assert renewed["access_token"] != first.access_token
    assert renewed["refresh_token"] != first.refresh_token  # rotated
    assert storage.tokens.refresh_token == renewed["refresh_token"]

    async with httpx2.AsyncClient(timeout=15, trust_env=False) as http:

        async def refresh_with(refresh_token: str) -> httpx2.Response:
            data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": sent["client_id"]}
            return await http.post(server.url + "/token", data=data)

        # The rotated-out refresh token is dead...
        replay = await refresh_with(first.refresh_token)
        assert replay.status_code == 400, replay.text
        assert replay.json()["error"] == "invalid_grant"
        # ...and replaying it revoked the whole family, the current one included (RFC 9700 §4.14.2).
        current = await refresh_with(renewed["refresh_token"])
        assert current.status_code == 400, current.text
        assert current.json()["error"] == "invalid_grant"


async def test_simultaneous_token_requests_on_sqlite_all_succeed(live_server):
    """Token requests arriving together on the default SQLite database each run on a thread and
    connection of their own; none may fail with "database is locked" (SQLite transactions
    begin IMMEDIATE, mcpsite/settings.py)."""
    from tests.support.oauth_flow import pkce_pair

    base, grants = live_server.url, 12
    async with httpx2.AsyncClient(timeout=15, trust_env=False) as http:
        registered = await http.post(
            base + "/register",
            json={
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
            },
        )
        client_id = registered.json()["client_id"]
        codes = []
        async with HeadlessBrowser(live_server.username, live_server.password) as browser:
            for _ in range(grants):
                verifier, challenge = pkce_pair()
                query = {
                    "response_type": "code",
                    "client_id": client_id,
                    "redirect_uri": REDIRECT_URI,
                    "scope": "mcp",
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                    "resource": base,
                }
                location = await browser.authorize(f"{base}/authorize?{urlencode(query)}")
                codes.append((query_of(location)["code"], verifier))

        async def token(data: dict) -> httpx2.Response:
            return await http.post(base + "/token", data={"client_id": client_id, "redirect_uri": REDIRECT_URI, **data})

        async def all_at_once(requests: list[dict]) -> list[httpx2.Response]:
            answers: list[httpx2.Response] = []
            async with anyio.create_task_group() as group:
                for data in requests:
                    group.start_soon(lambda d=data: _append(answers, token(d)))
            return answers

        exchanged = await all_at_once(
            [{"grant_type": "authorization_code", "code": c, "code_verifier": v} for c, v in codes]
        )
        assert [a.status_code for a in exchanged] == [200] * grants, [
            a.text[:200] for a in exchanged if a.status_code != 200
        ]
        refreshed = await all_at_once(
            [{"grant_type": "refresh_token", "refresh_token": a.json()["refresh_token"]} for a in exchanged]
        )
        assert [a.status_code for a in refreshed] == [200] * grants, [
            a.text[:200] for a in refreshed if a.status_code != 200
        ]


async def _append(answers: list, request) -> None:
    answers.append(await request)
