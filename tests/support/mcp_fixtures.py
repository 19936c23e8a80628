"""Fixtures for tests that speak MCP to the real ASGI application in-process.

Loaded as a pytest plugin (`-p tests.support.mcp_fixtures` in pytest.ini), so every
test module can ask for them.
"""

import asyncio

import pytest
from django.test import Client

from tests.support.asgi_client import StreamableHTTPClient
from tests.support.oauth_flow import full_flow


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def worker(monkeypatch):
    """Each test is a fresh worker process: its own sessions and worker channel on this test's event loop."""
    from mcp_app.cluster import directory  # a plugin loads before Django is set up; models come later

    host = directory.SessionDirectory()
    monkeypatch.setattr(directory, "this_worker", host)
    return host


@pytest.fixture
def app():
    from mcpsite.asgi import application

    return application


def _token_for(user) -> str:
    browser = Client()
    browser.force_login(user)
    return full_flow(browser)[1]["access_token"]


@pytest.fixture
def token(user):
    return _token_for(user)


@pytest.fixture
def other_token(other_user):
    return _token_for(other_user)


@pytest.fixture
async def shttp(app, token):
    client = StreamableHTTPClient(app, token)
    yield client
    await client.close()


@pytest.fixture
def blocking_tool():
    """A tool that waits until the test releases it: a stand-in for a slow tool, with no sleeps."""
    from mcp_app.engine.server import get_mcp_server

    started, release = asyncio.Event(), asyncio.Event()

    async def wait_for_release() -> str:
        started.set()
        await release.wait()
        return "released"

    server = get_mcp_server()
    server.add_tool(wait_for_release, name="test_wait_for_release")
    yield started, release
    server.remove_tool("test_wait_for_release")
