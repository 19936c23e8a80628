"""Refresh-token rotation (OAuth 2.1 §4.3.1, RFC 9700 §4.14) and code replay (OAuth 2.1 §4.1.3)."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from tests.support.oauth_flow import exchange_code, full_flow, obtain_code, pkce_pair, refresh, register

pytestmark = pytest.mark.django_db
AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()


def _checksum(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _exists(access_token: str) -> bool:
    return AccessToken.objects.filter(token_checksum=_checksum(access_token)).exists()


def test_refresh_rotates_both_tokens(logged_in):
    client_id, first = full_flow(logged_in)
    response = refresh(logged_in, client_id, first["refresh_token"])
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == "mcp"


def _rotated_long_ago(refresh_token: str, settings) -> None:
    """Move the rotation of ``refresh_token`` past the retry grace (as if that time had passed)."""
    past = timezone.now() - timedelta(seconds=settings.MCP_REFRESH_GRACE_SECONDS + 1)
    RefreshToken.objects.filter(token_checksum=_checksum(refresh_token)).update(revoked=past)


def test_reusing_a_rotated_refresh_token_after_the_grace_revokes_the_family(logged_in, settings):
    client_id, first = full_flow(logged_in)
    second = refresh(logged_in, client_id, first["refresh_token"]).json()
    _rotated_long_ago(first["refresh_token"], settings)
    replay = refresh(logged_in, client_id, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # The thief's use of the old token burned the legitimate holder's newer tokens too.
    assert refresh(logged_in, client_id, second["refresh_token"]).status_code == 400
    assert not _exists(second["access_token"])


# -- a refresh sent again (a client retrying after a time-out) -----------------------------------
def test_a_retry_within_the_grace_gets_a_sibling_pair_and_both_work(logged_in):
    client_id, first = full_flow(logged_in)
    second = refresh(logged_in, client_id, first["refresh_token"])
    retry = refresh(logged_in, client_id, first["refresh_token"])
    assert (second.status_code, retry.status_code) == (200, 200), retry.content
    second, retry = second.json(), retry.json()
    assert retry["access_token"] != second["access_token"]
    assert retry["refresh_token"] != second["refresh_token"]
    assert retry["scope"] == "mcp"
    assert _exists(second["access_token"]) and _exists(retry["access_token"])
    # Both lines go on: each refresh token rotates in turn.
    for tokens in (second, retry):
        assert refresh(logged_in, client_id, tokens["refresh_token"]).status_code == 200


def test_after_the_grace_reuse_revokes_the_siblings_too(logged_in, settings):
    client_id, first = full_flow(logged_in)
    second = refresh(logged_in, client_id, first["refresh_token"]).json()
    retry = refresh(logged_in, client_id, first["refresh_token"]).json()
    _rotated_long_ago(first["refresh_token"], settings)
    assert refresh(logged_in, client_id, first["refresh_token"]).json()["error"] == "invalid_grant"
    for tokens in (second, retry):
        assert not _exists(tokens["access_token"])
        assert refresh(logged_in, client_id, tokens["refresh_token"]).status_code == 400


def test_a_revoked_refresh_token_gets_no_grace(logged_in):
    client_id, tokens = full_flow(logged_in)
    revoked = logged_in.post(
        "/revoke", {"token": tokens["refresh_token"], "client_id": client_id, "token_type_hint": "refresh_token"}
    )
    assert revoked.status_code == 200
    again = refresh(logged_in, client_id, tokens["refresh_token"])
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_without_a_grace_every_reuse_revokes_the_family(logged_in, settings):
    settings.MCP_REFRESH_GRACE_SECONDS = 0
    client_id, first = full_flow(logged_in)
    second = refresh(logged_in, client_id, first["refresh_token"]).json()
    assert refresh(logged_in, client_id, first["refresh_token"]).json()["error"] == "invalid_grant"
    assert not _exists(second["access_token"])


def test_a_retry_by_another_client_is_refused(logged_in):
    client_id, first = full_flow(logged_in)
    refresh(logged_in, client_id, first["refresh_token"])
    other_client = register(logged_in)[1]["client_id"]
    response = refresh(logged_in, other_client, first["refresh_token"])
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


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
