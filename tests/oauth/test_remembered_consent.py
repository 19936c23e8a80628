"""Remembered consent (oauth_app/consent.py, MCP_REMEMBER_CONSENT): a client the person already
allowed the requested scopes gets its code without the consent page, after every other check;
a wider scope, a revocation, a Deny, changed redirect URIs or the setting off show the page again.
"""

from urllib.parse import urlencode

import pytest
from django.test import Client
from oauth2_provider.models import get_access_token_model, get_application_model, get_grant_model

from oauth_app.models import AuthEvent, ClientConsent
from tests.support.oauth_flow import (
    REDIRECT_URI,
    SERVER,
    authorize_params,
    consent_page,
    decide,
    exchange_code,
    obtain_code,
    pkce_pair,
    redirect_query,
    register,
)

pytestmark = pytest.mark.django_db
Grant = get_grant_model()
NOTES_SCOPES = "mcp notes:read"  # notes:read is declared by the notes app's tools


@pytest.fixture
def client_id(logged_in):
    status, registration = register(logged_in, client_name="Acme Assistant")
    assert status == 201, registration
    return registration["client_id"]


def allow(browser, client_id: str, **extra) -> dict:
    """Go through the consent page and Allow; the token response of the exchanged code."""
    verifier, challenge = pkce_pair()
    code = obtain_code(browser, client_id, challenge, **extra)
    response = exchange_code(browser, client_id, code, verifier)
    assert response.status_code == 200, response.content
    return response.json()


def authorize(browser, client_id: str, **extra):
    """GET /authorize; returns (response, verifier)."""
    verifier, challenge = pkce_pair()
    return consent_page(browser, authorize_params(client_id, challenge, **extra)), verifier


def assert_consent_page(response) -> None:
    assert response.status_code == 200, response.get("Location", response.content[:300])
    assert b'name="request_id"' in response.content


def remembered_code(response) -> str:
    """The code of an authorization answered without the page: a redirect straight to the client."""
    assert response.status_code == 302, response.content[:500]
    assert response["Location"].startswith(REDIRECT_URI + "?")
    assert response["Referrer-Policy"] == "no-referrer"
    query = redirect_query(response)
    assert query["state"] == "state-123"
    assert query["iss"] == SERVER  # RFC 9207, as after an Allow
    return query["code"]


def consent_events(kind=AuthEvent.Kind.CONSENT_GRANTED) -> list[str]:
    return list(AuthEvent.objects.filter(kind=kind).order_by("pk").values_list("detail", flat=True))


def test_a_second_authorization_of_the_same_scopes_skips_the_page_and_its_code_works(logged_in, client_id):
    allow(logged_in, client_id)
    response, verifier = authorize(logged_in, client_id)
    code = remembered_code(response)
    token = exchange_code(logged_in, client_id, code, verifier)
    assert token.status_code == 200, token.content
    assert token.json()["scope"] == "mcp"
    # The trail tells the remembered consent apart from the Allow.
    assert consent_events() == ["scope=mcp", "remembered; scope=mcp"]


def test_the_code_of_a_remembered_consent_still_needs_its_pkce_verifier(logged_in, client_id):
    allow(logged_in, client_id)
    response, _verifier = authorize(logged_in, client_id)
    code = remembered_code(response)
    _other_verifier, _ = pkce_pair()
    assert exchange_code(logged_in, client_id, code, _other_verifier).status_code == 400
    assert exchange_code(logged_in, client_id, code, None).status_code == 400


def test_fewer_scopes_than_allowed_are_covered(logged_in, client_id):
    allow(logged_in, client_id, scope=NOTES_SCOPES)
    response, verifier = authorize(logged_in, client_id, scope="notes:read")
    code = remembered_code(response)
    assert exchange_code(logged_in, client_id, code, verifier).json()["scope"] == "notes:read"


def test_a_wider_scope_shows_the_page_and_its_allow_widens_what_is_remembered(logged_in, client_id):
    allow(logged_in, client_id)
    response, _ = authorize(logged_in, client_id, scope=NOTES_SCOPES)
    assert_consent_page(response)
    assert b"notes:read" in response.content
    redirect_query(decide(logged_in, response, "allow"))
    assert ClientConsent.objects.get().scopes == {"mcp", "notes:read"}
    remembered_code(authorize(logged_in, client_id, scope=NOTES_SCOPES)[0])
    remembered_code(authorize(logged_in, client_id)[0])


def test_prompt_consent_shows_the_page(logged_in, client_id):
    allow(logged_in, client_id)
    assert_consent_page(authorize(logged_in, client_id, prompt="consent")[0])


def test_with_the_setting_off_the_page_shows_every_time(logged_in, client_id, settings):
    settings.MCP_REMEMBER_CONSENT = False
    allow(logged_in, client_id)
    assert_consent_page(authorize(logged_in, client_id)[0])
    allow(logged_in, client_id)
    assert_consent_page(authorize(logged_in, client_id)[0])
    assert "remembered; scope=mcp" not in consent_events()


def test_a_deny_is_never_remembered(logged_in, client_id):
    response, _ = authorize(logged_in, client_id)
    assert redirect_query(decide(logged_in, response, "deny"))["error"] == "access_denied"
    assert not ClientConsent.objects.exists()
    assert_consent_page(authorize(logged_in, client_id)[0])


def test_a_deny_takes_back_what_was_allowed_before(logged_in, client_id):
    allow(logged_in, client_id)
    wider, _ = authorize(logged_in, client_id, scope=NOTES_SCOPES)
    assert redirect_query(decide(logged_in, wider, "deny"))["error"] == "access_denied"
    assert not ClientConsent.objects.exists()
    assert_consent_page(authorize(logged_in, client_id)[0])


def test_consent_is_remembered_per_person(logged_in, client_id, other_user):
    allow(logged_in, client_id)
    mallory = Client()
    mallory.force_login(other_user)
    assert_consent_page(authorize(mallory, client_id)[0])


def test_every_other_check_still_applies(logged_in, client_id):
    allow(logged_in, client_id)
    grants_before = Grant.objects.count()
    # PKCE S256 only.
    response, _ = authorize(logged_in, client_id, code_challenge_method="plain")
    assert redirect_query(response)["error"] == "invalid_request"
    response, _ = authorize(logged_in, client_id, code_challenge=None, code_challenge_method=None)
    assert redirect_query(response)["error"] == "invalid_request"
    # The resource must be this server (RFC 8707).
    response, _ = authorize(logged_in, client_id, resource="https://elsewhere.example/mcp")
    assert redirect_query(response)["error"] == "invalid_target"
    # A redirect URI that is not registered gets the error page, never a redirect.
    response, _ = authorize(logged_in, client_id, redirect_uri="https://evil.example/callback")
    assert response.status_code == 400
    # A scope that does not exist.
    response, _ = authorize(logged_in, client_id, scope="mcp admin")
    assert redirect_query(response)["error"] == "invalid_scope"
    assert Grant.objects.count() == grants_before
    # Signed out: the login page first.
    logged_in.logout()
    response, _ = authorize(logged_in, client_id)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert Grant.objects.count() == grants_before


def test_revoking_on_the_connected_apps_page_shows_the_page_again(logged_in, client_id):
    allow(logged_in, client_id)
    application = get_application_model().objects.get(client_id=client_id)
    response = logged_in.post(f"/accounts/apps/{application.pk}/revoke/", {"confirm": "revoke"})
    assert response.status_code == 302
    assert_consent_page(authorize(logged_in, client_id)[0])


def test_the_client_revoking_its_token_at_revoke_ends_the_memory(logged_in, client_id):
    tokens = allow(logged_in, client_id)
    response = logged_in.post("/revoke", {"token": tokens["refresh_token"], "client_id": client_id})
    assert response.status_code == 200
    assert_consent_page(authorize(logged_in, client_id)[0])


def test_a_replayed_code_ends_the_memory(logged_in, client_id):
    verifier, challenge = pkce_pair()
    code = obtain_code(logged_in, client_id, challenge)
    assert exchange_code(logged_in, client_id, code, verifier).status_code == 200
    assert exchange_code(logged_in, client_id, code, verifier).status_code == 400  # replayed: what it issued goes
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.CODE_REPLAY).exists()
    assert_consent_page(authorize(logged_in, client_id)[0])


def test_staff_revoking_the_clients_tokens_in_the_admin_ends_the_memory(logged_in, client_id, django_user_model):
    allow(logged_in, client_id)
    staff = Client()
    staff.force_login(django_user_model.objects.create_superuser("root", "", "a long admin passphrase"))
    application = get_application_model().objects.get(client_id=client_id)
    response = staff.post(
        "/admin/oauth_app/application/",
        {"action": "revoke_all_tokens", "_selected_action": [application.pk]},
    )
    assert response.status_code == 302
    assert_consent_page(authorize(logged_in, client_id)[0])


def test_staff_revoking_one_access_token_in_the_admin_ends_the_memory(logged_in, client_id, django_user_model):
    allow(logged_in, client_id)
    staff = Client()
    staff.force_login(django_user_model.objects.create_superuser("root", "", "a long admin passphrase"))
    token = get_access_token_model().objects.get(application__client_id=client_id, scope="mcp")
    response = staff.post(
        "/admin/oauth2_provider/accesstoken/", {"action": "revoke_tokens", "_selected_action": [token.pk]}
    )
    assert response.status_code == 302
    assert_consent_page(authorize(logged_in, client_id)[0])


def test_changed_redirect_uris_end_the_memory(logged_in, client_id):
    allow(logged_in, client_id)
    application = get_application_model().objects.get(client_id=client_id)
    application.name = "Renamed"
    application.save()  # a change that leaves the redirect URIs is not one
    remembered_code(authorize(logged_in, client_id)[0])
    application.redirect_uris = f"{REDIRECT_URI} https://new.example/callback"
    application.save()
    assert_consent_page(authorize(logged_in, client_id)[0])


# ---------------------------------------------------------------------------
# After a login: the login form's POST ends at the client, so its page's form-action names it
# ---------------------------------------------------------------------------


def form_action(response) -> list[str]:
    for part in response["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        if name == "form-action":
            return values
    raise AssertionError(response["Content-Security-Policy"])


def login_page_for(browser, for_client: str, **extra):
    _verifier, challenge = pkce_pair()
    next_url = "/authorize?" + urlencode(authorize_params(for_client, challenge, **extra))
    return browser.get("/accounts/login/?" + urlencode({"next": next_url})), next_url


def test_a_person_signed_out_logs_in_and_the_remembered_consent_answers(logged_in, client_id, user):
    allow(logged_in, client_id)
    logged_in.logout()
    page, next_url = login_page_for(logged_in, client_id)
    assert page.status_code == 200
    # Chromium applies the login page's form-action to every redirect after its POST.
    assert form_action(page) == ["'self'", "http://127.0.0.1:33418"]
    login = logged_in.post(
        "/accounts/login/", {"username": "alice", "password": "correct horse battery staple", "next": next_url}
    )
    assert login.status_code == 302 and login["Location"] == next_url
    assert redirect_query(logged_in.get(login["Location"]))["code"]


@pytest.mark.parametrize(
    "extra",
    [
        {"redirect_uri": "https://evil.example/callback"},  # not registered for the client
        {"for_client": "no-such-client"},
    ],
)
def test_the_login_page_names_only_a_registered_redirect_of_a_known_client(client, client_id, extra):
    page, _ = login_page_for(client, **{"for_client": client_id, **extra})
    assert form_action(page) == ["'self'"]


def test_the_login_page_names_no_client_when_consent_is_not_remembered(client, client_id, settings):
    settings.MCP_REMEMBER_CONSENT = False
    page, _ = login_page_for(client, client_id)
    assert form_action(page) == ["'self'"]
