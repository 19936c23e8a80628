"""The official MCP conformance suite's authorization-server scenarios against a live server.

`conformance authorization` checks an OAuth authorization server as an MCP client
would meet it: its RFC 8414 metadata (issuer, endpoints, `code` and S256 PKCE; and,
as a recommendation, Client ID Metadata Documents), then a whole authorization
code grant with PKCE and an RFC 8707 resource, for a client registered beforehand.
The suite cannot register a client or log in, so the test does both: it registers
a public client with the suite's callback as redirect URI (RFC 7591, POST
/register), and when the suite prints the authorization URL, the headless browser
logs in and clicks Allow, and the redirect is delivered to the suite's callback,
as a browser would. Every scenario must pass; a WARNING (a recommendation not
followed) is reported, not failed.
"""

import anyio
import httpx2
import pytest

from tests.support.browser import HeadlessBrowser
from tests.support.conformance_suite import run_authorization_suite
from tests.support.services import free_port

pytestmark = [pytest.mark.live, pytest.mark.anyio]

HTTP_TIMEOUT = 15.0  # seconds for any one request to the server or to the suite's callback
SCENARIOS = {"authorization-server-metadata-endpoint", "authorization-code-grant"}


async def _register_public_client(http: httpx2.AsyncClient, server_url: str, redirect_uri: str) -> str:
    metadata = {
        "client_name": "MCP conformance suite",
        "redirect_uris": [redirect_uri],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }
    response = await http.post(server_url + "/register", json=metadata)
    assert response.status_code == 201, response.text
    return response.json()["client_id"]


async def test_the_authorization_server_passes_the_suites_scenarios(live_server, tmp_path):
    port = free_port()  # the suite's callback server listens here
    callback = f"http://127.0.0.1:{port}/callback"
    async with httpx2.AsyncClient(timeout=HTTP_TIMEOUT, trust_env=False) as http:
        client_id = await _register_public_client(http, live_server.url, callback)
        async with HeadlessBrowser(live_server.username, live_server.password) as browser:

            async def log_in_and_allow(authorization_url: str) -> None:
                location = await browser.authorize(authorization_url)
                assert location.startswith(callback + "?"), location
                with anyio.fail_after(HTTP_TIMEOUT):
                    delivered = await http.get(location)  # the browser follows the redirect
                assert delivered.status_code < 400, delivered.text

            run = await run_authorization_suite(
                live_server.url,
                client_id=client_id,
                resource=live_server.url + "/mcp",
                port=port,
                output_dir=tmp_path,
                complete_authorization=log_in_and_allow,
            )
    print("\n" + run.report())
    assert {scenario.name for scenario in run.scenarios} == SCENARIOS, run.stdout
    failed = [scenario.name for scenario in run.failed()]
    assert not failed, run.failure_message()
    assert browser.visited and browser.visited[0].startswith(live_server.url + "/authorize?"), browser.visited
