"""RFC 7636 (PKCE) as OAuth 2.1 requires it: S256 only, verifier mandatory."""

import pytest

from tests.support.oauth_flow import (
    authorize_params,
    consent_page,
    exchange_code,
    obtain_code,
    pkce_pair,
    redirect_query,
    register,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_id(logged_in):
    return register(logged_in)[1]["client_id"]


def test_s256_round_trip_issues_tokens(logged_in, client_id):
    """RFC 7636 §4.6: the server checks BASE64URL(SHA256(verifier)) == challenge."""
    verifier, challenge = pkce_pair()
    code = obtain_code(logged_in, client_id, challenge)
    response = exchange_code(logged_in, client_id, code, verifier)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "mcp"
    assert body["access_token"] and body["refresh_token"]
    assert response["Cache-Control"] == "no-store"


def test_wrong_verifier_is_refused(logged_in, client_id):
    _, challenge = pkce_pair()
    code = obtain_code(logged_in, client_id, challenge)
    response = exchange_code(logged_in, client_id, code, pkce_pair()[0])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_missing_verifier_is_refused(logged_in, client_id):
    _, challenge = pkce_pair()
    code = obtain_code(logged_in, client_id, challenge)
    response = exchange_code(logged_in, client_id, code, None)
    assert response.status_code == 400
    assert response.json()["error"] in {"invalid_request", "invalid_grant"}


def test_missing_challenge_is_refused_at_authorization(logged_in, client_id):
    """OAuth 2.1 §4.1.1: code_challenge is required; the error goes back to the client."""
    params = authorize_params(client_id, None, code_challenge_method=None)
    query = redirect_query(consent_page(logged_in, params))
    assert query["error"] == "invalid_request"
    assert query["state"] == "state-123"


def test_plain_method_is_refused(logged_in, client_id):
    verifier, _ = pkce_pair()
    params = authorize_params(client_id, verifier, code_challenge_method="plain")
    query = redirect_query(consent_page(logged_in, params))
    assert query["error"] == "invalid_request"
