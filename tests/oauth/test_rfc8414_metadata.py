"""RFC 8414: OAuth 2.0 Authorization Server Metadata."""

import pytest

pytestmark = pytest.mark.django_db


def test_issuer_and_endpoints_follow_the_origin_used(client):
    """RFC 8414 §3.2: metadata at /.well-known/oauth-authorization-server; issuer is the origin."""
    meta = client.get("/.well-known/oauth-authorization-server", HTTP_HOST="localhost:8000").json()
    assert meta["issuer"] == "http://localhost:8000"
    assert meta["authorization_endpoint"] == "http://localhost:8000/authorize"
    assert meta["token_endpoint"] == "http://localhost:8000/token"
    assert meta["registration_endpoint"] == "http://localhost:8000/register"
    assert meta["revocation_endpoint"] == "http://localhost:8000/revoke"
    other = client.get("/.well-known/oauth-authorization-server", HTTP_HOST="127.0.0.1:8000").json()
    assert other["issuer"] == "http://127.0.0.1:8000"


def test_advertises_only_what_the_server_accepts(client):
    """RFC 8414 §2 fields; OAuth 2.1: code flow, S256 only; `none` for public MCP clients."""
    meta = client.get("/.well-known/oauth-authorization-server").json()
    assert meta["response_types_supported"] == ["code"]
    assert meta["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "none" in meta["token_endpoint_auth_methods_supported"]
    # The server's own scope, then those the tools of installed apps declare (notes/mcp_tools.py).
    assert meta["scopes_supported"] == ["mcp", "notes:read", "notes:write"]
    assert meta["authorization_response_iss_parameter_supported"] is True


def test_public_url_overrides_the_request_origin(client, settings):
    settings.MCP_PUBLIC_URL = "https://mcp.example.com"
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": "https://mcp.example.com"}
    settings.ALLOWED_HOSTS = ["testserver"]
    meta = client.get("/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == "https://mcp.example.com"
    assert meta["token_endpoint"] == "https://mcp.example.com/token"


def test_metadata_is_readable_cross_origin(client):
    response = client.get("/.well-known/oauth-authorization-server", HTTP_ORIGIN="http://localhost:6274")
    assert response["Access-Control-Allow-Origin"] == "*"
    preflight = client.options(
        "/.well-known/oauth-authorization-server",
        HTTP_ORIGIN="http://localhost:6274",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="mcp-protocol-version",
    )
    assert preflight.status_code == 200
    assert "mcp-protocol-version" in preflight["Access-Control-Allow-Headers"]


@pytest.mark.parametrize("method", ["get", "put", "delete"])
@pytest.mark.parametrize("path", ["/token", "/revoke", "/register"])
def test_endpoints_advertised_for_post_answer_other_methods_with_a_json_405(client, path, method):
    """The metadata names these endpoints; a client that uses the wrong method gets an OAuth
    error body it can parse, and `Allow`, not an empty page."""
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"
    assert "POST" in response["Allow"] and "POST" in response.json()["error_description"]
