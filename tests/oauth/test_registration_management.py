"""RFC 7592 client configuration endpoint, /register/<client_id>: the registration access
token first (RFC 7592 §2, RFC 6750 §3.1), then the body, and a per-address rate limit.

Every answer is JSON (clients parse these endpoints' errors), never a 500.
"""

import json

import pytest
from oauth2_provider.models import get_application_model

from tests.support.oauth_flow import register

pytestmark = pytest.mark.django_db
Application = get_application_model()

# Bodies a request without the right token must never get read, let alone parsed: larger than
# Django reads at all (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB), nested deeper than json.loads
# recurses, no JSON, and a valid update.
BODIES = {
    "3-megabytes": b'{"client_name": "' + b"x" * (3 * 1024 * 1024) + b'"}',
    "nested-20000-deep": b"[" * 20_000 + b"]" * 20_000,
    "not-json": b"{not json",
    "valid-update": json.dumps({"redirect_uris": ["https://evil.example/cb"]}).encode(),
}


@pytest.fixture
def registered(client) -> dict:
    status, body = register(client, client_name="Managed client")
    assert status == 201, body
    return body


def path_of(registered: dict) -> str:
    return "/register/" + registered["client_id"]


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": "Bearer " + token}


def send(client, method: str, path: str, body: bytes = b"", **extra):
    """`method` with `body` as it is (also on GET and DELETE, whose bodies mean nothing here)."""
    return client.generic(method.upper(), path, data=body, content_type="application/json", **extra)


def assert_unchanged(registered: dict):
    app = Application.objects.get(client_id=registered["client_id"])
    assert app.redirect_uris == " ".join(registered["redirect_uris"])
    assert app.name == "Managed client"


@pytest.mark.parametrize("method", ["get", "put", "delete"])
@pytest.mark.parametrize("body", list(BODIES))
def test_no_token_is_challenged_before_the_body_is_read(client, registered, method, body):
    response = send(client, method, path_of(registered), BODIES[body])
    assert response.status_code == 401, response.content[:300]
    # RFC 6750 §3.1: a request without credentials is told the scheme, without an error code.
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"] == "invalid_token"
    assert response["Cache-Control"] == "no-store"
    assert_unchanged(registered)


@pytest.mark.parametrize("method", ["get", "put", "delete"])
@pytest.mark.parametrize("body", list(BODIES))
@pytest.mark.parametrize("token", ["made-up", "another-clients", "basic"])
def test_a_wrong_token_is_refused_before_the_body_is_read(client, registered, method, body, token):
    if token == "another-clients":
        status, other = register(client)
        assert status == 201
        auth = bearer(other["registration_access_token"])
    elif token == "basic":  # credentials of another scheme: no bearer token at all
        auth = {"HTTP_AUTHORIZATION": "Basic " + registered["registration_access_token"]}
    else:
        auth = bearer("made-up-" + registered["registration_access_token"])
    response = send(client, method, path_of(registered), BODIES[body], **auth)
    assert response.status_code == 401, response.content[:300]
    challenge = response["WWW-Authenticate"]
    if token == "basic":
        assert challenge == "Bearer"
    else:
        assert challenge.startswith('Bearer error="invalid_token"')
    assert response.json()["error"] == "invalid_token"
    assert_unchanged(registered)


@pytest.mark.parametrize(
    "body, status, error",
    [
        (BODIES["3-megabytes"], 413, "invalid_client_metadata"),  # bounded as /register is
        (json.dumps({"redirect_uris": ["https://a.example/cb"], "client_name": "x" * 100_000}).encode(), 413, None),
        (BODIES["nested-20000-deep"], 400, "invalid_client_metadata"),
        (BODIES["not-json"], 400, "invalid_client_metadata"),
        (b"[1, 2]", 400, "invalid_client_metadata"),
        (b"\xff\xfe", 400, "invalid_client_metadata"),
        (json.dumps({"redirect_uris": ["javascript:alert(1)"]}).encode(), 400, "invalid_redirect_uri"),
    ],
    ids=["3-megabytes", "100-kilobytes", "nested", "not-json", "array", "not-utf8", "bad-redirect"],
)
def test_with_the_token_the_body_is_checked_like_a_registration(client, registered, body, status, error):
    response = send(client, "put", path_of(registered), body, **bearer(registered["registration_access_token"]))
    assert response.status_code == status, response.content[:300]
    assert response.json()["error"] == (error or "invalid_client_metadata")
    assert_unchanged(registered)


def test_with_the_token_read_update_and_delete_work(client, registered):
    auth = bearer(registered["registration_access_token"])
    path = path_of(registered)
    read = client.get(path, **auth)
    assert read.status_code == 200
    assert read.json()["client_id"] == registered["client_id"]
    update = {
        "client_id": registered["client_id"],
        "redirect_uris": ["http://127.0.0.1:4000/cb"],
        "token_endpoint_auth_method": "none",
        "client_name": "Renamed",
    }
    updated = client.put(path, data=json.dumps(update), content_type="application/json", **auth)
    assert updated.status_code == 200, updated.content
    assert updated.json()["client_name"] == "Renamed"
    # DOT may rotate the token on update (RFC 7592 §2.2): the answer carries the one to use now.
    auth = bearer(updated.json().get("registration_access_token", registered["registration_access_token"]))
    deleted = client.delete(path, **auth)
    assert deleted.status_code == 204  # RFC 7592 §2.3
    assert not Application.objects.filter(client_id=registered["client_id"]).exists()
    gone = client.get(path, **auth)
    assert gone.status_code == 401  # the token went with its client
    assert gone.json()["error"] == "invalid_token"


@pytest.mark.parametrize("method", ["post", "patch"])
def test_other_methods_get_a_json_405(client, registered, method):
    response = send(client, method, path_of(registered), b"{}", **bearer(registered["registration_access_token"]))
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"
    assert {"GET", "PUT", "DELETE"} <= {name.strip() for name in response["Allow"].split(",")}
    assert_unchanged(registered)


def test_the_endpoint_is_rate_limited_per_address(client, registered, settings):
    """Counted before the token is looked at: guessing tokens costs requests like anything else."""
    settings.MCP_REGISTRATION_MANAGEMENT_REQUESTS_PER_MINUTE = 2
    path = path_of(registered)
    first = client.get(path, REMOTE_ADDR="203.0.113.40")
    second = client.get(path, **bearer(registered["registration_access_token"]), REMOTE_ADDR="203.0.113.40")
    assert (first.status_code, second.status_code) == (401, 200)
    refused = client.get(path, **bearer(registered["registration_access_token"]), REMOTE_ADDR="203.0.113.40")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["Cache-Control"] == "no-store"
    body = refused.json()
    assert body["error"] == "temporarily_unavailable"
    assert "from this address" in body["error_description"]
    # Every method counts, bodies unread; another address is not affected.
    assert send(client, "put", path, BODIES["3-megabytes"], REMOTE_ADDR="203.0.113.40").status_code == 429
    assert client.get(path, REMOTE_ADDR="203.0.113.41").status_code == 401
