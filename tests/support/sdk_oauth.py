"""MCP client for end-to-end tests: the `mcp` SDK's own client and OAuth provider against a live server.

    async with HeadlessBrowser(server.username, server.password) as browser:
        provider = oauth_provider(server, browser)
        async with mcp_http_client(server, provider) as http:
            response = await initialize(http, server)   # 401 -> the whole OAuth flow -> retried

`oauth_provider` wires the SDK's OAuthClientProvider to the headless browser:
its redirect handler lets the browser log in and consent, its callback handler
reads code/state/iss from the redirect the browser stopped at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from tests.support.browser import HeadlessBrowser
from tests.support.live_server import LiveServer

# Never listened on: the browser stops at the redirect and hands its Location to the callback.
REDIRECT_URI = "http://127.0.0.1:33418/callback"
MCP_PATH = "/mcp"


class MemoryTokenStorage:
    """The SDK's TokenStorage protocol, in memory."""

    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class AuthorizationDenied(Exception):
    """The authorization server redirected back with an error instead of a code."""

    def __init__(self, query: dict[str, str]):
        super().__init__(f"authorization failed: {query}")
        self.query = query


def redirect_query(location: str) -> dict[str, str]:
    """The parameters of the redirect to REDIRECT_URI (code, state, iss or error...)."""
    if not location.startswith(REDIRECT_URI + "?"):
        raise AssertionError(f"expected a redirect to {REDIRECT_URI}, got {location}")
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def oauth_provider(
    server: LiveServer,
    browser: HeadlessBrowser,
    *,
    decision: str = "allow",
    storage: MemoryTokenStorage | None = None,
    path: str = MCP_PATH,
) -> OAuthClientProvider:
    """An OAuthClientProvider for `server`'s MCP endpoint at `path`, registering as a public native client."""
    locations: list[str] = []

    async def redirect_handler(authorization_url: str) -> None:
        locations.append(await browser.authorize(authorization_url, decision))

    async def callback_handler() -> AuthorizationCodeResult:
        query = redirect_query(locations[-1])
        if "code" not in query:
            raise AuthorizationDenied(query)
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    metadata = OAuthClientMetadata(
        client_name="e2e SDK client",
        redirect_uris=[REDIRECT_URI],
        grant_types=["authorization_code", "refresh_token"],
        token_endpoint_auth_method="none",  # a native app holds no secret (RFC 8252 §8.4)
    )
    return OAuthClientProvider(
        server_url=server.url + path,
        client_metadata=metadata,
        storage=storage if storage is not None else MemoryTokenStorage(),
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )


@dataclass
class Exchange:
    method: str
    url: str
    request_body: bytes
    status: int
    response_body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.request_body.decode()).items()}

    def request_json(self):
        return json.loads(self.request_body)

    def response_json(self):
        return json.loads(self.response_body)


class ExchangeLog:
    """Records every request the client sends, the provider's own included (httpx2 runs
    event hooks for auth-flow requests too), so tests can assert on the wire."""

    def __init__(self):
        self.exchanges: list[Exchange] = []

    async def _on_response(self, response: httpx2.Response) -> None:
        # An SSE body ends only when the stream does: reading it here would stall the MCP transport.
        streaming = response.headers.get("content-type", "").startswith("text/event-stream")
        body = b"" if streaming else await response.aread()
        request = response.request
        self.exchanges.append(Exchange(request.method, str(request.url), request.content, response.status_code, body))

    @property
    def hooks(self) -> dict:
        return {"response": [self._on_response]}

    def to(self, method: str, path: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == method and e.path == path]


async def initialize(http: httpx2.AsyncClient, server: LiveServer) -> httpx2.Response:
    """POST an MCP initialize to the server's /mcp: the first request of every Streamable HTTP client."""
    message = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}},
    }
    headers = {"accept": "application/json, text/event-stream"}
    return await http.post(server.url + MCP_PATH, json=message, headers=headers)


def mcp_http_client(
    server: LiveServer, provider: OAuthClientProvider, *, log: ExchangeLog | None = None
) -> httpx2.AsyncClient:
    """An httpx2 client authenticated by `provider`, optionally recording into `log`."""
    return httpx2.AsyncClient(
        auth=provider,
        event_hooks=log.hooks if log is not None else None,
        timeout=httpx2.Timeout(30.0, read=300.0),  # the SDK's defaults: SSE streams idle between events
        trust_env=False,  # loopback only: never through a proxy from the environment
    )


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


async def wait_until_expired(provider, timeout: float = 10.0) -> None:
    """Until the provider itself considers its access token expired, so its next request refreshes.

    `provider.context` is SDK-internal state, read here so the test waits on the
    provider's own condition rather than sleeping for a guessed interval."""
    with anyio.fail_after(timeout):
        while provider.context.is_token_valid():
            await anyio.sleep(0.05)
