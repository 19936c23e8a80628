"""The consent page: allow, deny, CSRF, tampering, and error pages."""

import pytest
from django.test import Client
from oauth2_provider.models import get_access_token_model, get_grant_model

from tests.support.oauth_flow import (
    REDIRECT_URI,
    authorize_params,
    consent_page,
    decide,
    pkce_pair,
    redirect_query,
    register,
    request_id_of,
)

pytestmark = pytest.mark.django_db
Grant = get_grant_model()


@pytest.fixture
def client_id(logged_in):
    return register(logged_in, client_name="Acme Assistant")[1]["client_id"]


@pytest.fixture
def page(logged_in, client_id):
    _, challenge = pkce_pair()
    response = consent_page(logged_in, authorize_params(client_id, challenge))
    assert response.status_code == 200
    return response


def test_consent_page_names_client_scopes_redirect_and_self_registration(page):
    html = page.content.decode()
    assert "Acme Assistant" in html
    assert "127.0.0.1:33418" in html
    assert "Use the tools on this MCP server as you" in html
    assert 'id="self-registered"' in html
    assert "csrfmiddlewaretoken" in html
    assert page["Cache-Control"].startswith("max-age=0")


def test_manually_registered_client_is_not_flagged(logged_in, django_user_model):
    from oauth2_provider.models import get_application_model

    app = get_application_model().objects.create(
        name="Staff tool",
        client_type="public",
        authorization_grant_type="authorization-code",
        redirect_uris=REDIRECT_URI,
    )
    _, challenge = pkce_pair()
    page = consent_page(logged_in, authorize_params(app.client_id, challenge))
    assert page.status_code == 200
    assert 'id="self-registered"' not in page.content.decode()


def test_allow_issues_a_code_with_state_and_issuer(logged_in, page):
    response = decide(logged_in, page, "allow")
    assert response["Referrer-Policy"] == "no-referrer"  # the Location carries the code
    query = redirect_query(response)
    assert query["code"]
    assert query["state"] == "state-123"
    assert query["iss"] == "http://testserver"  # RFC 9207
    assert Grant.objects.count() == 1


def test_deny_redirects_with_access_denied_and_issues_nothing(logged_in, page):
    response = decide(logged_in, page, "deny")
    assert response["Location"].startswith(REDIRECT_URI)
    query = redirect_query(response)
    assert query["error"] == "access_denied"
    assert query["state"] == "state-123"
    assert query["iss"] == "http://testserver"  # RFC 9207 §2: error responses too
    assert "code" not in query
    assert not Grant.objects.exists()
    assert not get_access_token_model().objects.filter(scope="mcp").exists()


def test_consent_form_is_csrf_protected(user, client_id):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    _, challenge = pkce_pair()
    page = consent_page(browser, authorize_params(client_id, challenge))
    response = browser.post("/authorize", {"request_id": request_id_of(page), "decision": "allow"})
    assert response.status_code == 403
    assert b"expired" in response.content
    assert not Grant.objects.exists()


def test_a_request_id_answers_once(logged_in, page):
    redirect_query(decide(logged_in, page, "allow"))
    again = decide(logged_in, page, "allow")
    assert again.status_code == 400
    assert Grant.objects.count() == 1


def test_hidden_fields_cannot_widen_or_weaken_the_request(logged_in, page):
    """Posting OAuth parameters along with the form changes nothing: the server uses what it validated."""
    response = logged_in.post(
        "/authorize",
        {
            "request_id": request_id_of(page),
            "decision": "allow",
            "scope": "mcp admin write",
            "redirect_uri": "https://evil.example/steal",
            "code_challenge": "",
            "code_challenge_method": "plain",
            "client_id": "someone-else",
        },
    )
    assert response["Location"].startswith(REDIRECT_URI + "?")
    grant = Grant.objects.get()
    assert grant.scope == "mcp"
    assert grant.redirect_uri == REDIRECT_URI
    assert grant.code_challenge_method == "S256"
    assert grant.code_challenge


def test_forged_request_id_is_refused(logged_in, client_id):
    response = logged_in.post("/authorize", {"request_id": "made-up", "decision": "allow"})
    assert response.status_code == 400
    assert not Grant.objects.exists()


def test_another_users_request_id_is_useless(page, other_user):
    """The pending request lives in the first user's session."""
    mallory = Client()
    mallory.force_login(other_user)
    response = mallory.post("/authorize", {"request_id": request_id_of(page), "decision": "allow"})
    assert response.status_code == 400
    assert not Grant.objects.exists()


def test_unknown_scope_goes_back_as_invalid_scope(logged_in, client_id):
    _, challenge = pkce_pair()
    query = redirect_query(consent_page(logged_in, authorize_params(client_id, challenge, scope="mcp admin")))
    assert query["error"] == "invalid_scope"


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "unknown-client"},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": "http://127.0.0.1:33418/other-path"},
        {"client_id": None},
    ],
)
def test_unknown_client_or_unregistered_redirect_gets_an_error_page(logged_in, client_id, change):
    _, challenge = pkce_pair()
    params = {**authorize_params(client_id, challenge), **change}
    response = consent_page(logged_in, {key: value for key, value in params.items() if value is not None})
    assert response.status_code == 400
    assert "Location" not in response
    assert b"This authorization request can" in response.content


def test_broken_request_shows_the_error_before_asking_to_log_in(client):
    response = client.get("/authorize?client_id=nobody&response_type=code")
    assert response.status_code == 400


def test_anonymous_user_logs_in_then_comes_back(user, client_id):
    client = Client()  # a browser with no session yet
    _, challenge = pkce_pair()
    from urllib.parse import urlencode

    url = "/authorize?" + urlencode(authorize_params(client_id, challenge))
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    login = client.post(response["Location"], {"username": "alice", "password": "correct horse battery staple"})
    assert login.status_code == 302
    assert login["Location"] == url
    assert client.get(login["Location"]).status_code == 200


def test_loopback_redirect_matches_any_port(logged_in, client_id):
    """RFC 8252 §7.3."""
    _, challenge = pkce_pair()
    params = authorize_params(client_id, challenge, redirect_uri="http://127.0.0.1:50123/callback")
    page = consent_page(logged_in, params)
    assert page.status_code == 200
    assert decide(logged_in, page)["Location"].startswith("http://127.0.0.1:50123/callback?")


def test_private_use_scheme_redirect(logged_in):
    client_id = register(logged_in, redirect_uris=["cursor://anysphere.cursor-retrieval/oauth/callback"])[1][
        "client_id"
    ]
    _, challenge = pkce_pair()
    params = authorize_params(client_id, challenge, redirect_uri="cursor://anysphere.cursor-retrieval/oauth/callback")
    page = consent_page(logged_in, params)
    assert page.status_code == 200
    assert decide(logged_in, page)["Location"].startswith("cursor://anysphere.cursor-retrieval/oauth/callback?code=")
