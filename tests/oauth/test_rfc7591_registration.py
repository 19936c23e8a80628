"""RFC 7591: Dynamic Client Registration, with this server's redirect URI policy."""

import json

import pytest
from oauth2_provider.models import get_application_model

from tests.support.oauth_flow import register

pytestmark = pytest.mark.django_db
Application = get_application_model()


def test_public_client_registers_anonymously(client):
    """RFC 7591 §3.2.1: 201 with client_id and the registered metadata; no secret for `none`."""
    status, body = register(client, client_name="Claude Desktop")
    assert status == 201
    assert body["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in body
    app = Application.objects.get(client_id=body["client_id"])
    assert app.client_type == "public"
    assert app.registered_itself
    assert app.registered_from == "127.0.0.1"


def test_confidential_client_gets_a_secret_stored_hashed(client):
    status, body = register(client, token_endpoint_auth_method="client_secret_basic")
    assert status == 201
    secret = body["client_secret"]
    app = Application.objects.get(client_id=body["client_id"])
    assert app.client_type == "confidential"
    assert app.client_secret != secret
    assert secret not in app.client_secret


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "http://localhost:8080/callback",
        "http://127.0.0.1/callback",
        "http://[::1]:9000/cb",
        "cursor://anysphere.cursor-retrieval/oauth/callback",
        "com.example.app:/oauth2redirect",
    ],
)
def test_accepted_redirect_uris(client, uri):
    status, body = register(client, redirect_uris=[uri])
    assert status == 201, body
    assert body["redirect_uris"] == [uri]


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "https://app.example.com/cb#fragment",
        "http://app.example.com/callback",
        "http://192.168.1.10/callback",
        "https://user:pass@app.example.com/cb",
        "not a uri",
        "/relative/path",
        "https://app.example.com:99999/cb",
        "",
        42,
    ],
)
def test_refused_redirect_uris(client, uri):
    """RFC 7591 §3.2.2: invalid_redirect_uri, 400, nothing stored."""
    status, body = register(client, redirect_uris=[uri])
    assert status == 400
    assert body["error"] == "invalid_redirect_uri"
    assert body["error_description"]
    assert not Application.objects.exists()


@pytest.mark.parametrize(
    "metadata, error",
    [
        ({"redirect_uris": []}, "invalid_redirect_uri"),
        ({"redirect_uris": "https://a.example/cb"}, "invalid_redirect_uri"),
        ({"grant_types": ["client_credentials"]}, "invalid_client_metadata"),
        ({"grant_types": ["implicit"]}, "invalid_client_metadata"),
        ({"response_types": ["token"]}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({"client_name": ["not", "a", "string"]}, "invalid_client_metadata"),
        ({"client_name": "x" * 300}, "invalid_client_metadata"),
        # Arrays and objects inside these lists are unhashable: were a 500 (tests/live/test_fuzz_live.py).
        ({"grant_types": [["authorization_code"]]}, "invalid_client_metadata"),
        ({"response_types": [{"code": True}]}, "invalid_client_metadata"),
    ],
)
def test_refused_metadata(client, metadata, error):
    status, body = register(client, **metadata)
    assert status == 400
    assert body["error"] == error
    assert not Application.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[1, 2]",
        b"\xff\xfe",
        b"null",
        b"",
        # Deeper than json.loads can recurse (RecursionError, no ValueError): was a 500 (tests/live/test_fuzz_live.py).
        pytest.param(b"[" * 20_000 + b"]" * 20_000, id="nested-20000-deep"),
    ],
)
def test_malformed_bodies(client, raw):
    response = client.post("/register", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


def test_oversized_body_is_refused(client):
    body = json.dumps({"redirect_uris": ["https://a.example/cb"], "client_name": "x" * 100_000})
    response = client.post("/register", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_client_metadata"


def test_registrations_are_rate_limited_per_address(client, settings):
    settings.MCP_REGISTRATIONS_PER_HOUR = 3
    for _ in range(3):
        assert register(client)[0] == 201
    response = client.post(
        "/register", data=json.dumps({"redirect_uris": ["https://a.example/cb"]}), content_type="application/json"
    )
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"] == "temporarily_unavailable"
    # Another address is not affected.
    other = client.post(
        "/register",
        data=json.dumps({"redirect_uris": ["https://a.example/cb"]}),
        content_type="application/json",
        REMOTE_ADDR="127.0.0.9",
    )
    assert other.status_code == 201
    assert Application.objects.count() == 4


def test_registration_management_needs_the_registration_token(client):
    """RFC 7592: read with the registration access token, refused without it."""
    _, body = register(client)
    path = "/register/" + body["client_id"]
    assert client.get(path).status_code == 401
    response = client.get(path, HTTP_AUTHORIZATION="Bearer " + body["registration_access_token"])
    assert response.status_code == 200
    assert response.json()["client_id"] == body["client_id"]


# ---------------------------------------------------------------------------
# application_type (OIDC Dynamic Client Registration §2; MCP 2026-07-28, SEP-837)
# ---------------------------------------------------------------------------

# What mcp-remote 0.15.1 sends (node_modules/mcp-remote/dist: `clientMetadata`, then
# `resolveClientMetadata`, which derives "native" from its loopback redirect URI).
MCP_REMOTE_REGISTRATION = {
    "redirect_uris": ["http://localhost:3334/oauth/callback"],
    "token_endpoint_auth_method": "none",
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "client_name": "MCP CLI Client",
    "client_uri": "https://github.com/modelcontextprotocol/mcp-cli",
    "software_id": "2e6dc280-f3c3-4e01-99a7-8181dbd1d23d",
    "software_version": "0.15.1",
    "application_type": "native",
}


def _sdk_registration() -> dict:
    """The body the `mcp` SDK's own request builder sends (application_type defaults to "native")."""
    from mcp.client.auth.utils import create_client_registration_request
    from mcp.shared.auth import OAuthClientMetadata

    metadata = OAuthClientMetadata(
        client_name="SDK client",
        redirect_uris=["http://127.0.0.1:33418/callback"],
        grant_types=["authorization_code", "refresh_token"],
        token_endpoint_auth_method="none",
    )
    request = create_client_registration_request(None, metadata, "http://testserver")
    return json.loads(request.content)


def _register_raw(client, body: dict) -> tuple[int, dict]:
    response = client.post("/register", data=json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


@pytest.mark.parametrize("sender", ["mcp-remote", "mcp-sdk"])
def test_what_mcp_remote_and_the_sdk_send_registers_as_native(client, sender):
    body = MCP_REMOTE_REGISTRATION if sender == "mcp-remote" else _sdk_registration()
    assert body["application_type"] == "native"
    status, registered = _register_raw(client, body)
    assert status == 201, registered
    assert registered["application_type"] == "native"
    assert Application.objects.get(client_id=registered["client_id"]).application_type == "native"


@pytest.mark.parametrize(
    "application_type, uri",
    [
        ("web", "https://app.example.com/callback"),
        ("native", "http://127.0.0.1:8080/callback"),
        ("native", "http://localhost/callback"),
        ("native", "cursor://anysphere.cursor-retrieval/oauth/callback"),
        ("native", "https://app.example.com/callback"),  # RFC 8252 §7.2: a claimed https redirect
    ],
)
def test_declared_application_type_is_stored_and_echoed(client, application_type, uri):
    status, body = register(client, application_type=application_type, redirect_uris=[uri])
    assert status == 201, body
    assert body["application_type"] == application_type
    assert Application.objects.get(client_id=body["client_id"]).application_type == application_type


@pytest.mark.parametrize(
    "uris, application_type",
    [
        (["https://app.example.com/callback"], "web"),  # OIDC's default
        (["http://127.0.0.1:33418/callback"], "native"),  # a native app's: substituted (RFC 7591 §3.2.1)
        (["https://app.example.com/cb", "com.example.app:/oauth2redirect"], "native"),
    ],
)
@pytest.mark.parametrize("absent", ["missing", "null"])
def test_absent_application_type_is_decided_by_the_redirect_uris(client, uris, application_type, absent):
    """Clients from before SEP-837 send none; the server picks the value their redirect URIs allow."""
    extra = {"application_type": None} if absent == "null" else {}
    status, body = _register_raw(client, {"redirect_uris": uris, "token_endpoint_auth_method": "none", **extra})
    assert status == 201, body
    assert body["application_type"] == application_type


@pytest.mark.parametrize(
    "uris",
    [
        ["http://127.0.0.1:33418/callback"],
        ["http://localhost:8080/callback"],
        ["http://[::1]/callback"],
        ["https://localhost/callback"],
        ["cursor://anysphere.cursor-retrieval/oauth/callback"],
        ["https://app.example.com/callback", "http://127.0.0.1/callback"],
    ],
)
def test_a_web_client_may_not_register_loopback_or_private_use_redirects(client, uris):
    """OIDC Registration §2: web clients use https on a real host; these URIs are a native app's."""
    status, body = register(client, application_type="web", redirect_uris=uris)
    assert status == 400
    assert body["error"] == "invalid_redirect_uri"
    assert "native" in body["error_description"]
    assert not Application.objects.exists()


@pytest.mark.parametrize("value", ["browser", "", "WEB", "Native", 1, True, ["web"], {"type": "web"}])
def test_an_unknown_application_type_is_refused(client, value):
    status, body = register(client, application_type=value)
    assert status == 400
    assert body["error"] == "invalid_client_metadata"
    assert "application_type" in body["error_description"]
    assert not Application.objects.exists()


def test_registration_management_reads_and_updates_application_type(client):
    """RFC 7592 §2.1 and §2.2: the read answer carries it; an update is checked like a registration."""
    _, registered = register(client, application_type="native")
    client_id = registered["client_id"]
    path = "/register/" + client_id
    auth = {"HTTP_AUTHORIZATION": "Bearer " + registered["registration_access_token"]}
    assert client.get(path, **auth).json()["application_type"] == "native"

    def update(**metadata):
        body = {"client_id": client_id, "token_endpoint_auth_method": "none", **metadata}
        return client.put(path, data=json.dumps(body), content_type="application/json", **auth)

    refused = update(application_type="web", redirect_uris=["http://127.0.0.1:9/cb"])
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_redirect_uri")
    updated = update(application_type="web", redirect_uris=["https://app.example.com/cb"])
    assert updated.status_code == 200, updated.content
    assert updated.json()["application_type"] == "web"
    assert Application.objects.get(client_id=client_id).application_type == "web"
