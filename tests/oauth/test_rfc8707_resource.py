"""RFC 8707 resource indicators: every token is bound to this server."""

import pytest
from oauth2_provider.models import get_access_token_model

from tests.support.oauth_flow import (
    authorize_params,
    consent_page,
    exchange_code,
    full_flow,
    obtain_code,
    pkce_pair,
    redirect_query,
    refresh,
    register,
)

pytestmark = pytest.mark.django_db
AccessToken = get_access_token_model()


def _token(access_token: str):
    import hashlib

    return AccessToken.objects.get(token_checksum=hashlib.sha256(access_token.encode()).hexdigest())


def test_resource_given_at_authorization_is_bound_to_the_token(logged_in):
    _, tokens = full_flow(logged_in, resource="http://testserver")
    token = _token(tokens["access_token"])
    assert token.resource == ["http://testserver"]
    assert token.allows_audience("http://testserver/mcp")
    assert token.allows_audience("http://testserver/sse")
    assert not token.allows_audience("http://elsewhere.example/mcp")


def test_no_resource_means_this_server(logged_in):
    """A token is never unrestricted: absent `resource` binds it to this server."""
    _, tokens = full_flow(logged_in)
    assert _token(tokens["access_token"]).resource == ["http://testserver"]


def test_foreign_resource_at_authorization_is_invalid_target(logged_in):
    client_id = register(logged_in)[1]["client_id"]
    _, challenge = pkce_pair()
    params = authorize_params(client_id, challenge, resource="https://other.example/mcp")
    query = redirect_query(consent_page(logged_in, params))
    assert query["error"] == "invalid_target"
    assert query["state"] == "state-123"


def test_foreign_resource_at_token_endpoint_is_invalid_target(logged_in):
    client_id = register(logged_in)[1]["client_id"]
    verifier, challenge = pkce_pair()
    code = obtain_code(logged_in, client_id, challenge)
    response = exchange_code(logged_in, client_id, code, verifier, resource="https://other.example")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"
    assert not AccessToken.objects.filter(scope="mcp").exists()  # (DCR issued only its registration token)


def test_token_request_cannot_widen_the_granted_resource(logged_in):
    client_id = register(logged_in)[1]["client_id"]
    verifier, challenge = pkce_pair()
    code = obtain_code(logged_in, client_id, challenge, resource="http://testserver/mcp")
    response = exchange_code(logged_in, client_id, code, verifier, resource="http://testserver/sse")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


def test_refresh_keeps_the_audience_and_refuses_a_foreign_one(logged_in):
    client_id, tokens = full_flow(logged_in)
    bad = refresh(logged_in, client_id, tokens["refresh_token"], resource="https://other.example")
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_target"


@pytest.mark.parametrize("resource", ["not-a-uri", "https://user@testserver/", "http://testserver/#frag"])
def test_malformed_resource_is_refused(logged_in, resource):
    client_id = register(logged_in)[1]["client_id"]
    _, challenge = pkce_pair()
    query = redirect_query(consent_page(logged_in, authorize_params(client_id, challenge, resource=resource)))
    assert query["error"] == "invalid_target"
