"""Refresh-token rotation (OAuth 2.1 §4.3.1, RFC 9700 §4.14) and code replay (OAuth 2.1 §4.1.3)."""

import hashlib

import pytest
from oauth2_provider.models import get_access_token_model

from tests.support.oauth_flow import exchange_code, full_flow, obtain_code, pkce_pair, refresh, register

pytestmark = pytest.mark.django_db
AccessToken = get_access_token_model()


def _exists(access_token: str) -> bool:
    return AccessToken.objects.filter(token_checksum=hashlib.sha256(access_token.encode()).hexdigest()).exists()


def test_refresh_rotates_both_tokens(logged_in):
    client_id, first = full_flow(logged_in)
    response = refresh(logged_in, client_id, first["refresh_token"])
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == "mcp"


def test_reusing_a_rotated_refresh_token_revokes_the_family(logged_in):
    client_id, first = full_flow(logged_in)
    second = refresh(logged_in, client_id, first["refresh_token"]).json()
    replay = refresh(logged_in, client_id, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # The thief's use of the old token burned the legitimate holder's newer tokens too.
    assert refresh(logged_in, client_id, second["refresh_token"]).status_code == 400
    assert not _exists(second["access_token"])


def test_refresh_by_another_client_is_refused(logged_in):
    _, tokens = full_flow(logged_in)
    other_client = register(logged_in)[1]["client_id"]
    response = refresh(logged_in, other_client, tokens["refresh_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_replaying_a_code_revokes_what_it_issued(logged_in):
    client_id = register(logged_in)[1]["client_id"]
    verifier, challenge = pkce_pair()
    code = obtain_code(logged_in, client_id, challenge)
    tokens = exchange_code(logged_in, client_id, code, verifier).json()
    replay = exchange_code(logged_in, client_id, code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert not _exists(tokens["access_token"])
    assert refresh(logged_in, client_id, tokens["refresh_token"]).status_code == 400


def test_code_for_another_client_is_refused(logged_in):
    client_id = register(logged_in)[1]["client_id"]
    other = register(logged_in)[1]["client_id"]
    verifier, challenge = pkce_pair()
    code = obtain_code(logged_in, client_id, challenge)
    response = exchange_code(logged_in, other, code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"grant_type": "password", "username": "alice", "password": "x"},
        {"grant_type": "client_credentials"},
        {"grant_type": "implicit"},
        {"grant_type": "refresh_token"},
        {"grant_type": "authorization_code"},
        {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "x"},
    ],
)
def test_malformed_token_requests_get_rfc_errors(logged_in, data):
    client_id = register(logged_in)[1]["client_id"]
    response = logged_in.post("/token", {"client_id": client_id, **data})
    assert response.status_code in (400, 401)
    assert response.json()["error"] in {
        "invalid_request",
        "unsupported_grant_type",
        "invalid_grant",
        "unauthorized_client",
        "invalid_client",
    }


def test_undecodable_basic_credentials_get_invalid_client(logged_in):
    # base64 raises a plain ValueError on non-ASCII, which DOT does not catch: was a 500 (tests/live/test_fuzz_live.py).
    client_id, tokens = full_flow(logged_in)
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client_id}
    response = logged_in.post("/token", data, HTTP_AUTHORIZATION="Basic ¡")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
