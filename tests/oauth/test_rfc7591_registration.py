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
