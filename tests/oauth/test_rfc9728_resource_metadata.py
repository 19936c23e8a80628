"""RFC 9728: OAuth 2.0 Protected Resource Metadata."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("suffix", ["", "/mcp", "/sse"])
def test_resource_is_a_prefix_of_both_mcp_urls(client, suffix):
    """RFC 9728 §3: the document at the root and under each MCP path names the same resource."""
    meta = client.get("/.well-known/oauth-protected-resource" + suffix, HTTP_HOST="127.0.0.1:8000").json()
    assert meta["resource"] == "http://127.0.0.1:8000"
    for mcp_url in ("http://127.0.0.1:8000/mcp", "http://127.0.0.1:8000/sse"):
        assert mcp_url.startswith(meta["resource"] + "/")
    assert meta["bearer_methods_supported"] == ["header"]
    # The server's own scope, then those the tools of installed apps declare (notes/mcp_tools.py).
    assert meta["scopes_supported"] == ["mcp", "notes:read", "notes:write"]


def test_authorization_servers_is_the_issuer(client):
    """RFC 9728 §2: clients compare issuer and authorization_servers string for string."""
    resource = client.get("/.well-known/oauth-protected-resource").json()
    issuer = client.get("/.well-known/oauth-authorization-server").json()["issuer"]
    assert resource["authorization_servers"] == [issuer]


def test_unknown_suffix_is_not_found(client):
    assert client.get("/.well-known/oauth-protected-resource/elsewhere").status_code == 404
