"""GET /healthz, and X-Forwarded-* believed only from trusted proxies."""

import pytest

from tests.support.asgi_client import http

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio]


async def test_healthz_reports_each_dependency(app):
    result = await http(app, "GET", "/healthz", host="10.0.0.5")  # probed by address: no Host check
    assert result.status == 200
    assert result.json() == {"status": "ok", "database": "ok", "channel_layer": "ok", "cache": "ok"}
    assert result.headers["cache-control"] == "no-store"


async def test_healthz_is_read_only(app):
    assert (await http(app, "POST", "/healthz")).status == 405


async def test_forwarded_headers_from_an_untrusted_address_are_ignored(app, settings):
    settings.MCP_TRUSTED_PROXIES = []
    headers = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.9"}
    meta = (await http(app, "GET", "/.well-known/oauth-authorization-server", headers=headers)).json()
    assert meta["issuer"] == "http://testserver"


async def test_forwarded_headers_from_a_trusted_proxy_apply(app, settings):
    settings.MCP_TRUSTED_PROXIES = ["127.0.0.1"]
    headers = {"x-forwarded-proto": "https", "x-forwarded-for": "198.51.100.7, 203.0.113.9"}
    meta = (await http(app, "GET", "/.well-known/oauth-authorization-server", headers=headers)).json()
    assert meta["issuer"] == "https://testserver"


async def test_the_client_address_comes_from_the_trusted_proxy(app, settings):
    """Rate limits count the client, not the proxy: the registration records who registered."""
    import json

    from oauth2_provider.models import get_application_model

    settings.MCP_TRUSTED_PROXIES = ["127.0.0.1"]
    body = json.dumps({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}).encode()
    headers = {"content-type": "application/json", "x-forwarded-for": "198.51.100.7"}
    result = await http(app, "POST", "/register", body, headers)
    assert result.status == 201
    application = await get_application_model().objects.aget(client_id=result.json()["client_id"])
    assert application.registered_from == "198.51.100.7"
