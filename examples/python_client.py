"""Call this server's tools from Python with the `mcp` SDK, signing in through your browser.

    python python_client_example.py http://127.0.0.1:8000/mcp

The SDK discovers the server's OAuth metadata, registers itself as a client and opens
the login and consent pages in your browser. After "Allow" the browser is sent to
http://127.0.0.1:33418/callback, where nothing listens: copy that address from the
address bar and paste it at the prompt. The README shows this file;
tests/live/test_interop_clients.py runs it against a live server.
"""

import asyncio
import sys
import webbrowser
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata


class MemoryStorage:
    """The SDK's TokenStorage protocol. Keep the tokens somewhere safer to reuse them between runs."""

    tokens = client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


async def open_browser(authorization_url: str) -> None:
    webbrowser.open(authorization_url)


async def pasted_redirect() -> AuthorizationCodeResult:
    query = parse_qs(urlsplit(input("Paste the address you were redirected to: ").strip()).query)
    if "code" not in query:
        raise SystemExit(f"authorization failed: {query}")
    return AuthorizationCodeResult(code=query["code"][0], state=query["state"][0], iss=query.get("iss", [None])[0])


async def main(url: str) -> None:
    auth = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="my script",
            redirect_uris=["http://127.0.0.1:33418/callback"],
            grant_types=["authorization_code", "refresh_token"],
            token_endpoint_auth_method="none",  # a public client: PKCE, no secret
        ),
        storage=MemoryStorage(),
        redirect_handler=open_browser,
        callback_handler=pasted_redirect,
    )
    async with httpx2.AsyncClient(auth=auth, timeout=httpx2.Timeout(30, read=300)) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            print("tools:", [tool.name for tool in (await client.list_tools()).tools])
            print("add:", (await client.call_tool("add", {"a": 2, "b": 40})).structured_content)
            print("whoami:", (await client.call_tool("whoami", {})).structured_content)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/mcp"))
