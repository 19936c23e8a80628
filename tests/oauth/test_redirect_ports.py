"""Redirect URI ports are port numbers (1-65535), at registration and at /authorize.

A loopback redirect URI matches any port at /authorize (RFC 8252 §7.3), so the port a
request names is the one part of it that registration never saw: it is checked there.
"""

import json

import pytest
from oauth2_provider.models import get_application_model

from tests.support.oauth_flow import REDIRECT_URI, authorize_params, consent_page, pkce_pair, register

pytestmark = pytest.mark.django_db
Application = get_application_model()

# Not a TCP port: out of range, zero, or not a number at all.
BAD_PORTS = ["99999", "65536", "0", "-1", "+80", "80a"]


@pytest.mark.parametrize("port", BAD_PORTS)
@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "localhost"])
def test_registration_refuses_a_loopback_redirect_on_no_port(client, host, port):
    status, body = register(client, redirect_uris=[f"http://{host}:{port}/cb"])
    assert status == 400, body
    assert body["error"] == "invalid_redirect_uri"
    assert "port" in body["error_description"]
    assert not Application.objects.exists()


@pytest.mark.parametrize("port", ["1", "65535", "00080"])
def test_registration_takes_every_port_number(client, port):
    uri = f"http://127.0.0.1:{port}/cb"
    status, body = register(client, redirect_uris=[uri])
    assert status == 201, body
    assert body["redirect_uris"] == [uri]


def test_an_update_is_held_to_the_same_ports(client):
    """RFC 7592 §2.2: the management endpoint checks redirect URIs as registration does."""
    _, registered = register(client)
    response = client.put(
        "/register/" + registered["client_id"],
        data=json.dumps({"client_id": registered["client_id"], "redirect_uris": ["http://127.0.0.1:0/cb"]}),
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer " + registered["registration_access_token"],
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"


@pytest.fixture
def loopback_client(logged_in) -> str:
    status, body = register(logged_in)  # REDIRECT_URI: http://127.0.0.1:33418/callback
    assert status == 201, body
    return body["client_id"]


def assert_error_page(response):
    assert response.status_code == 400, response.content[:300]
    assert "Location" not in response  # never a redirect to a URI that is no URI
    html = response.content.decode()
    assert "This authorization request can" in html
    assert "port" in html


@pytest.mark.parametrize("port", BAD_PORTS)
def test_authorize_refuses_a_loopback_redirect_on_no_port(logged_in, loopback_client, port):
    _, challenge = pkce_pair()
    params = authorize_params(loopback_client, challenge, redirect_uri=f"http://127.0.0.1:{port}/callback")
    assert_error_page(consent_page(logged_in, params))


def test_authorize_refuses_it_before_asking_anyone_to_log_in(client, loopback_client):
    client.logout()
    _, challenge = pkce_pair()
    params = authorize_params(loopback_client, challenge, redirect_uri="http://127.0.0.1:99999/callback")
    assert_error_page(consent_page(client, params))


def test_a_bad_port_on_an_https_redirect_is_an_error_page_too(logged_in):
    """DOT compares the ports of non-loopback redirects, where a bad one would raise."""
    _, registered = register(logged_in, redirect_uris=["https://app.example.com/cb"])
    _, challenge = pkce_pair()
    params = authorize_params(registered["client_id"], challenge, redirect_uri="https://app.example.com:99999/cb")
    assert_error_page(consent_page(logged_in, params))


@pytest.mark.parametrize("port", ["1", "65535", "50123"])
def test_authorize_still_takes_any_real_port_on_loopback(logged_in, loopback_client, port):
    _, challenge = pkce_pair()
    params = authorize_params(loopback_client, challenge, redirect_uri=f"http://127.0.0.1:{port}/callback")
    page = consent_page(logged_in, params)
    assert page.status_code == 200, page.content[:300]
    # The registered URI itself, as ever.
    assert (
        consent_page(logged_in, authorize_params(loopback_client, challenge, redirect_uri=REDIRECT_URI)).status_code
        == 200
    )
