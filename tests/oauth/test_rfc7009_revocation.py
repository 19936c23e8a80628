"""RFC 7009 token revocation."""

import hashlib

import pytest
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from tests.support.oauth_flow import full_flow, refresh

pytestmark = pytest.mark.django_db


def _checksum(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_revoking_the_access_token(logged_in):
    client_id, tokens = full_flow(logged_in)
    response = logged_in.post("/revoke", {"token": tokens["access_token"], "client_id": client_id})
    assert response.status_code == 200
    assert not get_access_token_model().objects.filter(token_checksum=_checksum(tokens["access_token"])).exists()


def test_revoking_the_refresh_token_stops_refresh(logged_in):
    client_id, tokens = full_flow(logged_in)
    response = logged_in.post(
        "/revoke", {"token": tokens["refresh_token"], "token_type_hint": "refresh_token", "client_id": client_id}
    )
    assert response.status_code == 200
    assert refresh(logged_in, client_id, tokens["refresh_token"]).status_code == 400


def test_unknown_token_is_answered_200(logged_in):
    """RFC 7009 §2.2: an invalid token is not an error."""
    client_id, _ = full_flow(logged_in)
    assert logged_in.post("/revoke", {"token": "no-such-token", "client_id": client_id}).status_code == 200


def test_another_clients_token_is_not_revoked(logged_in):
    _, tokens = full_flow(logged_in)
    other_client, _ = full_flow(logged_in)
    logged_in.post("/revoke", {"token": tokens["access_token"], "client_id": other_client})
    assert get_access_token_model().objects.filter(token_checksum=_checksum(tokens["access_token"])).exists()


def test_unknown_client_is_refused(logged_in):
    _, tokens = full_flow(logged_in)
    response = logged_in.post("/revoke", {"token": tokens["access_token"], "client_id": "nobody"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_undecodable_basic_credentials_are_refused(logged_in):
    # base64 raises a plain ValueError on non-ASCII, which DOT does not catch: was a 500 (tests/live/test_fuzz_live.py).
    client_id, tokens = full_flow(logged_in)
    data = {"token": tokens["access_token"], "client_id": client_id}
    response = logged_in.post("/revoke", data, HTTP_AUTHORIZATION="Basic ¡")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert get_access_token_model().objects.filter(token_checksum=_checksum(tokens["access_token"])).exists()


def test_tokens_are_stored_hashed_only(logged_in):
    _, tokens = full_flow(logged_in)
    for model, raw in (
        (get_access_token_model(), tokens["access_token"]),
        (get_refresh_token_model(), tokens["refresh_token"]),
    ):
        row = model.objects.get(token_checksum=_checksum(raw))
        assert row.token != raw
        assert raw not in str(model.objects.filter(pk=row.pk).values().first())
