"""The Connected apps page (/accounts/apps/): each client that can use the server as the person,
who it is, what it may do, when, its tool calls; Revoke (one client or all) behind a
confirmation and CSRF, taking back its access and refresh tokens, codes and remembered consent,
recorded in the auth event trail. One person never sees nor revokes another's clients.
"""

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_refresh_token_model,
)

from mcp_app.models import ToolCall
from oauth_app.models import AuthEvent, ClientConsent
from oauth_app.resource_server import token_checksum
from tests.site.test_security_headers import assert_page_protections
from tests.support.asgi_client import StreamableHTTPClient
from tests.support.cimd import DocumentServer, LoopbackCA, client_document, use_loopback_fetcher
from tests.support.oauth_flow import (
    REDIRECT_URI,
    authorize_params,
    consent_page,
    decide,
    exchange_code,
    obtain_code,
    pkce_pair,
    redirect_query,
    refresh,
    register,
)

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()
Application = get_application_model()
PAGE = "/accounts/apps/"
MCP_DESCRIPTION = "Use the tools on this MCP server as you"


def connect(browser, name: str = "Acme Assistant", scope: str = "mcp", client_id: str | None = None) -> dict:
    """Register a client (unless one is given), allow it and exchange the code, as the signed-in
    person of `browser`. Returns the token response, with the client's id under "client_id"."""
    if client_id is None:
        status, registration = register(browser, client_name=name)
        assert status == 201, registration
        client_id = registration["client_id"]
    verifier, challenge = pkce_pair()
    code = obtain_code(browser, client_id, challenge, scope=scope)
    response = exchange_code(browser, client_id, code, verifier)
    assert response.status_code == 200, response.content
    return {**response.json(), "client_id": client_id}


def pending_code(browser, client_id: str) -> str:
    """A code issued and not exchanged yet (a Grant row)."""
    _verifier, challenge = pkce_pair()
    return obtain_code(browser, client_id, challenge)


def application(client_id: str):
    return Application.objects.get(client_id=client_id)


def revoke_url(client_id: str) -> str:
    return f"{PAGE}{application(client_id).pk}/revoke/"


def holdings(user, client_id: str) -> dict:
    """What the client holds of the person: rows that still work."""
    app = application(client_id)
    return {
        "access": AccessToken.objects.filter(user=user, application=app)
        .exclude(scope__contains=":registration")
        .count(),
        "refresh": RefreshToken.objects.filter(user=user, application=app, revoked__isnull=True).count(),
        "codes": Grant.objects.filter(user=user, application=app).count(),
        "consent": ClientConsent.objects.filter(user=user, application=app).count(),
    }


def listed(page) -> list[str]:
    return [item["application"].client_id for item in page.context["apps"]]


@pytest.fixture
def alice(logged_in):
    return logged_in


@pytest.fixture
def mallory(other_user):
    browser = Client()
    browser.force_login(other_user)
    return browser


# ---------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_needs_a_login(client):
    for path in (PAGE, f"{PAGE}revoke-all/", f"{PAGE}1/revoke/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next="), path
    assert client.post(f"{PAGE}revoke-all/", {"confirm": "revoke"}).status_code == 302


@pytest.mark.django_db
def test_the_landing_page_and_the_header_link_to_it(alice):
    landing = alice.get("/").content.decode()
    assert landing.count(f'href="{PAGE}"') == 2  # the header's link and the landing page's own
    assert 'href="/accounts/password/"' in landing
    assert f'href="{PAGE}"' not in Client().get("/").content.decode()  # nobody signed in: no link


@pytest.mark.django_db
def test_each_page_carries_the_content_security_policy(alice):
    """No inline script or style, no framing, forms posting to this site only."""
    gone = connect(alice)
    for path, status in (
        (PAGE, 200),
        (revoke_url(gone["client_id"]), 200),
        (f"{PAGE}revoke-all/", 200),
        (f"{PAGE}999999/revoke/", 404),
    ):
        response = alice.get(path)
        assert response.status_code == status, path
        assert_page_protections(response)
    unconfirmed = alice.post(revoke_url(gone["client_id"]), {})
    assert unconfirmed.status_code == 400
    assert_page_protections(unconfirmed)


@pytest.mark.django_db
def test_nothing_connected(alice):
    page = alice.get(PAGE)
    assert page.status_code == 200
    assert page["Cache-Control"].startswith("max-age=0")
    assert 'id="no-apps"' in page.content.decode()
    assert "Sign out everywhere" not in page.content.decode()


@pytest.mark.django_db
def test_a_self_registered_client_is_listed_with_its_warning_scopes_and_dates(alice, user):
    before = timezone.now()
    tokens = connect(alice, "Acme Assistant", scope="mcp notes:read")
    page = alice.get(PAGE)
    html = page.content.decode()
    assert listed(page) == [tokens["client_id"]]
    assert '<strong class="client-name">Acme Assistant</strong>' in html
    assert "This application registered itself" in html and "has not been verified" in html
    # Scopes in the words of the consent page.
    assert MCP_DESCRIPTION in html and "(mcp)" in html
    assert "(notes:read)" in html
    [item] = page.context["apps"]
    connection = item["connection"]
    assert [scope for scope, _ in connection.scopes] == ["mcp", "notes:read"]
    assert before <= connection.allowed_at <= connection.last_issued_at <= timezone.now()
    assert (connection.access_tokens, connection.refresh_tokens, connection.codes) == (1, 1, 0)
    assert item["tool_calls"] == 0 and item["last_tool_call"] is None
    assert "Remembered: it gets these permissions again without asking you." in html
    assert 'id="what-the-dates-mean"' in html
    assert f'href="{revoke_url(tokens["client_id"])}"' in html


@pytest.mark.django_db
def test_last_token_issued_follows_refreshes(alice):
    tokens = connect(alice)
    first = alice.get(PAGE).context["apps"][0]["connection"]
    assert refresh(alice, tokens["client_id"], tokens["refresh_token"]).status_code == 200
    again = alice.get(PAGE).context["apps"][0]["connection"]
    assert again.allowed_at == first.allowed_at
    assert again.last_issued_at > first.last_issued_at


@pytest.mark.django_db
def test_a_client_set_up_by_staff_is_shown_as_trusted(alice):
    app = Application.objects.create(
        name="Staff tool",
        client_type="public",
        authorization_grant_type="authorization-code",
        redirect_uris=REDIRECT_URI,
    )
    connect(alice, client_id=app.client_id)
    html = alice.get(PAGE).content.decode()
    assert "Set up by the staff of this server." in html
    assert "registered itself" not in html


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return LoopbackCA.create(tmp_path_factory.mktemp("cimd-ca"))


@pytest.mark.django_db
def test_a_client_known_by_its_metadata_document_is_named_by_its_verified_host(alice, settings, ca):
    use_loopback_fetcher(settings, ca)
    with DocumentServer(ca) as documents:
        client_id = documents.url("/apps/client.json")
        documents.serve_document(client_document(client_id, client_name="<b>Your Bank</b>"))
        connect(alice, client_id=client_id)
        html = alice.get(PAGE).content.decode()
    host = f"127.0.0.1:{documents.port}"
    assert f"The application from <strong>{host}</strong>" in html
    assert f"verified: {host}" in html
    assert "&lt;b&gt;Your Bank&lt;/b&gt;" in html and "<b>Your Bank</b>" not in html  # text, never markup
    assert "registered itself" not in html


@pytest.mark.django_db
def test_an_unexchanged_code_and_a_consent_alone_count_as_connected(alice):
    _status, registration = register(alice, client_name="Half Way")
    code_only = registration["client_id"]
    pending_code(alice, code_only)
    page = alice.get(PAGE)
    assert listed(page) == [code_only]
    connection = page.context["apps"][0]["connection"]
    assert (connection.access_tokens, connection.refresh_tokens, connection.codes) == (0, 0, 1)
    # Once the code expires, the remembered consent still lets it come back: it stays listed.
    Grant.objects.update(expires=timezone.now())
    assert listed(alice.get(PAGE)) == [code_only]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
def test_tool_calls_are_counted_per_person_and_client(alice, mallory, app):
    tokens = connect(alice, "Caller")
    quiet = connect(alice, "Quiet")
    theirs = connect(mallory, "Theirs")

    async def call_tools(token: str, count: int) -> None:
        client = StreamableHTTPClient(app, token)
        await client.initialize()
        for n in range(count):
            reply = await client.request("tools/call", {"name": "add", "arguments": {"a": n, "b": 1}})
            assert "result" in reply, reply
        await client.close()

    async_to_sync(call_tools)(tokens["access_token"], 3)
    async_to_sync(call_tools)(theirs["access_token"], 2)
    assert ToolCall.objects.count() == 5

    page = alice.get(PAGE)
    counts = {item["application"].client_id: item["tool_calls"] for item in page.context["apps"]}
    assert counts == {tokens["client_id"]: 3, quiet["client_id"]: 0}
    [caller] = [item for item in page.context["apps"] if item["application"].client_id == tokens["client_id"]]
    assert (
        caller["last_tool_call"]
        == ToolCall.objects.filter(client_id=tokens["client_id"]).latest("created_at").created_at
    )
    assert '<span class="count">3</span>' in page.content.decode()


# ---------------------------------------------------------------------------
# One person, one list
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_person_sees_only_their_own_clients(alice, mallory):
    mine = connect(alice, "Mine")
    theirs = connect(mallory, "Theirs")
    assert listed(alice.get(PAGE)) == [mine["client_id"]]
    assert listed(mallory.get(PAGE)) == [theirs["client_id"]]
    assert "Theirs" not in alice.get(PAGE).content.decode()


@pytest.mark.django_db
def test_one_client_of_two_people_shows_each_only_their_own_grants(alice, mallory, user, other_user):
    shared = connect(alice, "Shared")
    connect(mallory, client_id=shared["client_id"])
    connect(mallory, client_id=shared["client_id"])
    [item] = alice.get(PAGE).context["apps"]
    assert item["connection"].access_tokens == 1  # not mallory's two
    # Alice revoking it leaves mallory's grants of the same client alone.
    assert alice.post(revoke_url(shared["client_id"]), {"confirm": "revoke"}).status_code == 302
    assert holdings(user, shared["client_id"]) == {"access": 0, "refresh": 0, "codes": 0, "consent": 0}
    assert holdings(other_user, shared["client_id"]) == {"access": 2, "refresh": 2, "codes": 0, "consent": 1}


@pytest.mark.django_db
def test_another_persons_client_is_not_found_and_cannot_be_revoked(alice, mallory, other_user):
    theirs = connect(mallory, "Theirs")
    url = revoke_url(theirs["client_id"])
    assert alice.get(url).status_code == 404
    assert alice.post(url, {"confirm": "revoke"}).status_code == 404
    assert holdings(other_user, theirs["client_id"]) == {"access": 1, "refresh": 1, "codes": 0, "consent": 1}
    assert refresh(mallory, theirs["client_id"], theirs["refresh_token"]).status_code == 200
    assert not AuthEvent.objects.filter(kind=AuthEvent.Kind.TOKEN_REVOKED).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["999999/revoke/", "abc/revoke/", "-1/revoke/"])
def test_unknown_ids_are_not_found(alice, path):
    assert alice.get(PAGE + path).status_code == 404
    assert alice.post(PAGE + path, {"confirm": "revoke"}).status_code == 404


@pytest.mark.django_db
def test_other_methods_are_refused(alice):
    tokens = connect(alice)
    assert alice.put(revoke_url(tokens["client_id"])).status_code == 405
    assert alice.post(PAGE).status_code == 405
    assert alice.delete(f"{PAGE}revoke-all/").status_code == 405


# ---------------------------------------------------------------------------
# Revoking one client
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_revoking_a_client_takes_back_its_tokens_codes_and_consent(alice, user):
    gone = connect(alice, "Gone")
    second = refresh(alice, gone["client_id"], gone["refresh_token"]).json()  # a rotation family of two
    pending_code(alice, gone["client_id"])
    kept = connect(alice, "Kept")
    assert holdings(user, gone["client_id"]) == {"access": 1, "refresh": 1, "codes": 1, "consent": 1}

    confirmation = alice.get(revoke_url(gone["client_id"]))
    assert confirmation.status_code == 200
    html = confirmation.content.decode()
    assert 'Revoke access of <strong class="client-name">Gone</strong>?' in html
    assert "csrfmiddlewaretoken" in html
    assert MCP_DESCRIPTION in html
    assert holdings(user, gone["client_id"])["access"] == 1  # looking is not revoking

    response = alice.post(revoke_url(gone["client_id"]), {"confirm": "revoke"})
    assert response.status_code == 302 and response["Location"] == PAGE
    assert holdings(user, gone["client_id"]) == {"access": 0, "refresh": 0, "codes": 0, "consent": 0}
    assert not AccessToken.objects.filter(token_checksum=token_checksum(second["access_token"])).exists()
    # Neither refresh token of the family works any more; nor does the code left unexchanged.
    for refresh_token in (second["refresh_token"], gone["refresh_token"]):
        answer = refresh(alice, gone["client_id"], refresh_token)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    page = alice.get(PAGE)
    assert listed(page) == [kept["client_id"]]
    assert "Gone no longer has access" in page.content.decode()
    # The other client keeps everything.
    assert refresh(alice, kept["client_id"], kept["refresh_token"]).status_code == 200


@pytest.mark.django_db
def test_a_revoked_client_must_ask_again(alice):
    gone = connect(alice, "Gone")
    alice.post(revoke_url(gone["client_id"]), {"confirm": "revoke"})
    _verifier, challenge = pkce_pair()
    page = consent_page(alice, authorize_params(gone["client_id"], challenge))
    assert page.status_code == 200 and b'name="request_id"' in page.content
    assert "code" in redirect_query(decide(alice, page))  # and may be allowed again
    assert listed(alice.get(PAGE)) == [gone["client_id"]]


@pytest.mark.django_db
def test_the_revocation_is_recorded_in_the_auth_event_trail(alice, user):
    gone = connect(alice, "Gone")
    alice.post(revoke_url(gone["client_id"]), {"confirm": "revoke"})
    event = AuthEvent.objects.get(kind=AuthEvent.Kind.TOKEN_REVOKED)
    assert event.user == user and event.username == "alice"
    assert event.client_id == gone["client_id"]
    assert event.address == "127.0.0.1"
    assert event.detail.startswith("every grant of the client revoked by the person on the Connected apps page:")
    assert "1 access token(s), 1 refresh token(s), 0 authorization code(s); consent forgotten" in event.detail
    assert gone["access_token"] not in event.detail and gone["refresh_token"] not in event.detail


@pytest.mark.django_db
def test_a_revocation_needs_the_confirmation(alice, user):
    gone = connect(alice, "Gone")
    for data in ({}, {"confirm": ""}, {"confirm": "yes"}):
        response = alice.post(revoke_url(gone["client_id"]), data)
        assert response.status_code == 400
        assert "Nothing was revoked" in response.content.decode()
    assert holdings(user, gone["client_id"]) == {"access": 1, "refresh": 1, "codes": 0, "consent": 1}


@pytest.mark.django_db
def test_a_revocation_is_csrf_protected(alice, user):
    gone = connect(alice, "Gone")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    for url in (revoke_url(gone["client_id"]), f"{PAGE}revoke-all/"):
        response = browser.post(url, {"confirm": "revoke"})
        assert response.status_code == 403
        assert b"This form has expired" in response.content
    assert holdings(user, gone["client_id"]) == {"access": 1, "refresh": 1, "codes": 0, "consent": 1}
    # With the token from the confirmation page, it goes through.
    confirmation = browser.get(revoke_url(gone["client_id"]))
    token = confirmation.context["csrf_token"]
    response = browser.post(revoke_url(gone["client_id"]), {"confirm": "revoke", "csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302
    assert holdings(user, gone["client_id"]) == {"access": 0, "refresh": 0, "codes": 0, "consent": 0}


# ---------------------------------------------------------------------------
# Sign out everywhere
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_sign_out_everywhere_revokes_every_client_of_the_person_only(alice, mallory, user, other_user):
    first = connect(alice, "First")
    second = connect(alice, "Second")
    pending_code(alice, second["client_id"])
    theirs = connect(mallory, "Theirs")

    confirmation = alice.get(f"{PAGE}revoke-all/")
    assert confirmation.status_code == 200
    html = confirmation.content.decode()
    assert "First" in html and "Second" in html and "Theirs" not in html
    assert holdings(user, first["client_id"])["access"] == 1

    unconfirmed = alice.post(f"{PAGE}revoke-all/", {})
    assert unconfirmed.status_code == 400 and "Nothing was revoked" in unconfirmed.content.decode()
    assert holdings(user, first["client_id"])["access"] == 1

    response = alice.post(f"{PAGE}revoke-all/", {"confirm": "revoke"})
    assert response.status_code == 302 and response["Location"] == PAGE
    for tokens in (first, second):
        assert holdings(user, tokens["client_id"]) == {"access": 0, "refresh": 0, "codes": 0, "consent": 0}
        assert refresh(alice, tokens["client_id"], tokens["refresh_token"]).status_code == 400
    page = alice.get(PAGE)
    assert listed(page) == []
    assert "Signed out everywhere: 2 app(s) no longer have access." in page.content.decode()
    # Mallory keeps hers, and alice stays logged in here.
    assert holdings(other_user, theirs["client_id"]) == {"access": 1, "refresh": 1, "codes": 0, "consent": 1}
    assert page.context["user"] == user
    events = AuthEvent.objects.filter(kind=AuthEvent.Kind.TOKEN_REVOKED).order_by("pk")
    assert {event.client_id for event in events} == {first["client_id"], second["client_id"]}
    assert all(event.user == user and "(sign out everywhere)" in event.detail for event in events)
