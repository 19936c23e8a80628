"""The auth event trail (oauth_app.events, AuthEvent): each event where it happens, through
the real views; read-only in the admin; never a secret in it or in the logs; a failed
write never fails the request."""

import logging
import sqlite3
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from oauth2_provider.models import get_access_token_model, get_application_model, get_refresh_token_model

from oauth_app.models import AuthEvent
from tests.support.browser import HeadlessBrowser
from tests.support.oauth_flow import (
    REDIRECT_URI,
    authorize_params,
    consent_page,
    decide,
    exchange_code,
    full_flow,
    pkce_pair,
    redirect_query,
    refresh,
    register,
)

Kind = AuthEvent.Kind
PASSWORD = "correct horse battery staple"  # tests/conftest.py's `user`
ADDRESS = "203.0.113.7"


def events(kind=None):
    rows = AuthEvent.objects.order_by("pk")
    return list(rows.filter(kind=kind) if kind else rows)


def only(kind) -> AuthEvent:
    (event,) = events(kind)
    return event


# ---------------------------------------------------------------------------
# Login, logout, lockout
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_login_success_and_failure(client, user):
    failed = client.post("/accounts/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR=ADDRESS)
    assert failed.status_code == 200
    event = only(Kind.LOGIN_FAILED)
    assert (event.username, event.user, event.address) == ("alice", user, ADDRESS)

    ok = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR=ADDRESS)
    assert ok.status_code == 302
    event = only(Kind.LOGIN)
    assert (event.user, event.username, event.address) == (user, "alice", ADDRESS)


@pytest.mark.django_db
def test_failed_login_of_an_unknown_name_does_not_keep_the_name_typed(client, caplog):
    """It may be a password typed into the wrong field: neither the trail nor the log keeps it."""
    with caplog.at_level("INFO"):
        client.post("/accounts/login/", {"username": "Tr0ub4dor&3", "password": "x"})
    event = only(Kind.LOGIN_FAILED)
    assert (event.username, event.user, event.address) == ("", None, "127.0.0.1")
    assert "no such account" in event.detail
    assert "Tr0ub4dor" not in caplog.text


@pytest.mark.django_db
def test_logout(logged_in, user):
    assert logged_in.post("/accounts/logout/").status_code == 200
    assert only(Kind.LOGOUT).user == user


@pytest.mark.django_db
def test_lockout_after_repeated_failures(client, user):
    """django-axes locks the account out; its user_locked_out signal becomes an event."""
    for _ in range(settings.AXES_FAILURE_LIMIT):
        last = client.post("/accounts/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR=ADDRESS)
    assert last.status_code == 429
    event = events(Kind.LOCKED_OUT)[0]
    assert (event.username, event.address) == ("alice", ADDRESS)
    assert len(events(Kind.LOGIN_FAILED)) == settings.AXES_FAILURE_LIMIT


# ---------------------------------------------------------------------------
# Registration, consent, tokens
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_client_registered(client):
    status, registration = register(client, client_name="Claude\nDesktop")
    assert status == 201
    event = only(Kind.CLIENT_REGISTERED)
    assert (event.client_id, event.user, event.address) == (registration["client_id"], None, "127.0.0.1")
    assert event.detail == "client_name='Claude\\nDesktop'"  # quoted: a name cannot forge a log line


@pytest.mark.django_db
@pytest.mark.parametrize("decision, kind", [("allow", Kind.CONSENT_GRANTED), ("deny", Kind.CONSENT_DENIED)])
def test_consent_granted_and_denied(logged_in, user, decision, kind):
    _status, registration = register(logged_in)
    _verifier, challenge = pkce_pair()
    page = consent_page(logged_in, authorize_params(registration["client_id"], challenge))
    redirect_query(decide(logged_in, page, decision))
    event = only(kind)
    assert (event.user, event.client_id, event.detail) == (user, registration["client_id"], "scope=mcp")
    other = Kind.CONSENT_DENIED if kind == Kind.CONSENT_GRANTED else Kind.CONSENT_GRANTED
    assert events(other) == []


@pytest.mark.django_db
def test_token_issued_then_refreshed(logged_in, user):
    client_id, tokens = full_flow(logged_in)
    issued = only(Kind.TOKEN_ISSUED)
    assert (issued.user, issued.client_id) == (user, client_id)
    assert issued.detail.startswith("grant_type=authorization_code; access token #")
    assert refresh(logged_in, client_id, tokens["refresh_token"]).status_code == 200
    refreshed = only(Kind.TOKEN_REFRESHED)
    assert (refreshed.user, refreshed.client_id) == (user, client_id)
    assert refreshed.detail.startswith("grant_type=refresh_token; access token #")
    assert get_application_model().objects.get(client_id=client_id).last_used_at is not None


@pytest.mark.django_db
def test_refresh_token_reuse_is_detected(logged_in, user, settings):
    settings.MCP_REFRESH_GRACE_SECONDS = 0  # every reuse, however soon (the grace: test_refresh_rotation.py)
    client_id, tokens = full_flow(logged_in)
    assert refresh(logged_in, client_id, tokens["refresh_token"]).status_code == 200
    assert refresh(logged_in, client_id, tokens["refresh_token"]).status_code == 400  # the rotated one again
    event = only(Kind.REFRESH_TOKEN_REUSE)
    assert (event.user, event.client_id) == (user, client_id)
    assert "family was revoked" in event.detail
    assert not get_refresh_token_model().objects.filter(revoked__isnull=True).exists()


@pytest.mark.django_db
def test_an_unknown_refresh_token_is_no_reuse(logged_in):
    client_id, _tokens = full_flow(logged_in)
    assert refresh(logged_in, client_id, "no-such-refresh-token").status_code == 400
    assert events(Kind.REFRESH_TOKEN_REUSE) == []


@pytest.mark.django_db
def test_authorization_code_replay_is_detected(logged_in, user):
    _status, registration = register(logged_in)
    client_id = registration["client_id"]
    verifier, challenge = pkce_pair()
    code = redirect_query(decide(logged_in, consent_page(logged_in, authorize_params(client_id, challenge))))["code"]
    assert exchange_code(logged_in, client_id, code, verifier).status_code == 200
    assert exchange_code(logged_in, client_id, code, verifier).status_code == 400
    event = only(Kind.CODE_REPLAY)
    assert (event.user, event.client_id) == (user, client_id)
    assert "revoked" in event.detail


# ---------------------------------------------------------------------------
# Revocation: /revoke (RFC 7009) and the admin's actions
# ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
def test_revocation_at_the_revoke_endpoint(logged_in, user, which):
    client_id, tokens = full_flow(logged_in)
    response = logged_in.post("/revoke", {"token": tokens[which], "token_type_hint": which, "client_id": client_id})
    assert response.status_code == 200
    event = only(Kind.TOKEN_REVOKED)
    assert (event.user, event.client_id) == (user, client_id)
    assert event.detail.startswith(which.split("_")[0] + " token #") and "/revoke" in event.detail


@pytest.mark.django_db
def test_revoking_an_unknown_token_records_nothing(logged_in):
    client_id, _tokens = full_flow(logged_in)
    assert logged_in.post("/revoke", {"token": "never-issued", "client_id": client_id}).status_code == 200
    assert events(Kind.TOKEN_REVOKED) == []


@pytest.fixture
def staff(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "", "a long admin passphrase")
    client.force_login(admin)
    return client


@pytest.mark.django_db
def test_admin_revocations(staff, user):
    alice = Client()
    alice.force_login(user)
    client_id, _tokens = full_flow(alice)
    access = get_access_token_model().objects.get(scope="mcp")
    staff.post("/admin/oauth2_provider/accesstoken/", {"action": "revoke_tokens", "_selected_action": [access.pk]})
    client_id2, _tokens = full_flow(alice)
    assert not get_refresh_token_model().objects.filter(access_token=None, revoked__isnull=True).exists()
    live = get_refresh_token_model().objects.get(revoked__isnull=True)
    staff.post("/admin/oauth2_provider/refreshtoken/", {"action": "revoke_families", "_selected_action": [live.pk]})
    application = get_application_model().objects.get(client_id=client_id2)
    staff.post("/admin/oauth_app/application/", {"action": "revoke_all_tokens", "_selected_action": [application.pk]})

    first, second, third = events(Kind.TOKEN_REVOKED)
    assert (first.user, first.client_id, first.detail) == (
        user,
        client_id,
        f"access token #{access.pk} revoked in the admin by root",
    )
    assert (second.user, second.client_id, second.detail) == (
        user,
        client_id2,
        f"refresh token #{live.pk} and its family revoked in the admin by root",
    )
    assert (third.client_id, third.detail) == (client_id2, "every token of the client revoked in the admin by root")


# ---------------------------------------------------------------------------
# The admin: read-only, filterable, searchable
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_lists_filters_and_searches_but_cannot_change(staff, user):
    Client().post("/accounts/login/", {"username": "alice", "password": "x"})  # someone else, signed out
    full_flow(staff)
    event = events(Kind.LOGIN_FAILED)[0]
    base = "/admin/oauth_app/authevent/"

    listing = staff.get(base)
    assert listing.status_code == 200
    assert {row.kind for row in listing.context["cl"].result_list} >= {Kind.LOGIN, Kind.LOGIN_FAILED, Kind.TOKEN_ISSUED}

    by_kind = staff.get(base, {"kind__exact": Kind.LOGIN_FAILED})
    assert [row.pk for row in by_kind.context["cl"].result_list] == [event.pk]
    by_name = staff.get(base, {"q": "alice"})
    assert [row.pk for row in by_name.context["cl"].result_list] == [event.pk]
    this_year = staff.get(base, {"created_at__year": event.created_at.year, "kind__exact": Kind.LOGIN_FAILED})
    assert [row.pk for row in this_year.context["cl"].result_list] == [event.pk]
    long_ago = staff.get(base, {"created_at__year": 2000})
    assert list(long_ago.context["cl"].result_list) == []

    assert staff.get(base + "add/").status_code == 403
    detail = staff.get(f"{base}{event.pk}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content  # shown, not editable
    assert staff.post(f"{base}{event.pk}/change/", {"kind": "login", "username": "forged"}).status_code == 403
    assert staff.post(f"{base}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.username == "alice"


# ---------------------------------------------------------------------------
# Robustness and secrecy
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_failed_write_does_not_fail_the_request(client, user, caplog):
    """The table is gone (SQLite drops it inside the test's transaction, rolled back after):
    the login still succeeds, and the failure is logged."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {AuthEvent._meta.db_table}")
    with caplog.at_level(logging.ERROR, logger="oauth_app.events"):
        response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert "_auth_user_id" in client.session
    assert "could not record auth event login" in caplog.text


def _secrets_of_a_whole_flow(client, user) -> list[str]:
    """Log in with a password, register, consent, exchange, refresh, reuse, replay, revoke;
    every secret value the flow handled."""
    client.post("/accounts/login/", {"username": "alice", "password": "wrong-" + PASSWORD})
    assert client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    status, registration = register(client)
    assert status == 201
    client_id = registration["client_id"]
    verifier, challenge = pkce_pair()
    page = consent_page(client, authorize_params(client_id, challenge))
    code = redirect_query(decide(client, page))["code"]
    first = exchange_code(client, client_id, code, verifier).json()
    assert exchange_code(client, client_id, code, verifier).status_code == 400  # replay
    verifier2, challenge2 = pkce_pair()
    code2 = redirect_query(decide(client, consent_page(client, authorize_params(client_id, challenge2))))["code"]
    second = exchange_code(client, client_id, code2, verifier2).json()
    rotated = refresh(client, client_id, second["refresh_token"]).json()
    assert refresh(client, client_id, second["refresh_token"]).status_code == 400  # reuse
    verifier3, challenge3 = pkce_pair()
    code3 = redirect_query(decide(client, consent_page(client, authorize_params(client_id, challenge3))))["code"]
    third = exchange_code(client, client_id, code3, verifier3).json()
    assert client.post("/revoke", {"token": third["access_token"], "client_id": client_id}).status_code == 200
    return [
        PASSWORD,
        "wrong-" + PASSWORD,
        registration["registration_access_token"],
        code,
        code2,
        code3,
        verifier,
        verifier2,
        verifier3,
        page.context["request_id"],
        *(token[name] for token in (first, second, rotated, third) for name in ("access_token", "refresh_token")),
    ]


@pytest.mark.django_db
def test_no_secret_in_events_or_log_lines(client, user, caplog, settings):
    settings.MCP_REFRESH_GRACE_SECONDS = 0  # the flow's reuse is at once
    # caplog sees what the configured loggers emit (mcpsite.settings LOGGING), as in production.
    secrets = _secrets_of_a_whole_flow(client, user)
    kinds = {event.kind for event in events()}
    assert kinds >= {
        Kind.LOGIN_FAILED,
        Kind.LOGIN,
        Kind.CLIENT_REGISTERED,
        Kind.CONSENT_GRANTED,
        Kind.TOKEN_ISSUED,
        Kind.CODE_REPLAY,
        Kind.TOKEN_REFRESHED,
        Kind.REFRESH_TOKEN_REUSE,
        Kind.TOKEN_REVOKED,
    }, kinds
    stored = "\n".join(
        " ".join(str(value) for value in row)
        for row in AuthEvent.objects.values_list("kind", "username", "client_id", "address", "detail")
    )
    assert "oauth_app.events" in caplog.text and "token_refreshed" in caplog.text  # the log was captured
    for secret in secrets:
        assert secret and secret not in stored, "a secret is in the auth event trail"
        assert secret not in caplog.text, "a secret is in the log output"


@pytest.mark.live
@pytest.mark.anyio
async def test_no_secret_in_a_live_servers_log_or_trail(live_server):
    """The same through daphne with production settings: a headless browser logs in and
    consents, then the client exchanges, refreshes, reuses and revokes over HTTP. The
    server's whole stderr and its trail hold none of the values."""
    body = {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", "client_name": "Live client"}
    async with httpx2.AsyncClient(base_url=live_server.url, timeout=10, trust_env=False) as http:
        registration = (await http.post("/register", json=body)).json()
        client_id = registration["client_id"]
        verifier, challenge = pkce_pair()
        url = f"{live_server.url}/authorize?{urlencode(authorize_params(client_id, challenge))}"
        async with HeadlessBrowser(live_server.username, live_server.password) as browser:
            code = parse_qs(urlsplit(await browser.authorize(url)).query)["code"][0]
        exchange = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": client_id,
            "code_verifier": verifier,
        }
        first = (await http.post("/token", data=exchange)).json()
        again = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": client_id}
        rotated = (await http.post("/token", data=again)).json()
        sibling = await http.post("/token", data=again)  # a retry within the grace: a sibling pair
        assert sibling.status_code == 200
        sibling = sibling.json()
        revoke = {"token": rotated["refresh_token"], "client_id": client_id, "token_type_hint": "refresh_token"}
        assert (await http.post("/revoke", data=revoke)).status_code == 200
        reuse = {"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"], "client_id": client_id}
        assert (await http.post("/token", data=reuse)).status_code == 400  # reuse of a revoked token
        revoke = {"token": rotated["access_token"], "client_id": client_id}
        assert (await http.post("/revoke", data=revoke)).status_code == 200
    secrets = [
        live_server.password,
        registration["registration_access_token"],
        code,
        verifier,
        first["access_token"],
        first["refresh_token"],
        rotated["access_token"],
        rotated["refresh_token"],
        sibling["access_token"],
        sibling["refresh_token"],
    ]

    with sqlite3.connect(live_server.database) as database:
        rows = database.execute(
            "SELECT kind, username, client_id, address, detail FROM oauth_app_authevent WHERE client_id = ?",
            (client_id,),
        ).fetchall()
    kinds = {row[0] for row in rows}
    assert kinds >= {
        Kind.CLIENT_REGISTERED,
        Kind.CONSENT_GRANTED,
        Kind.TOKEN_ISSUED,
        Kind.TOKEN_REFRESHED,
        Kind.REFRESH_TOKEN_REUSE,
    }, kinds
    stored = repr(rows)
    log = live_server.stderr()
    assert f"token_issued user='{live_server.username}'" in log  # the event lines are in the log
    for secret in secrets:
        assert secret not in stored, "a secret is in the auth event trail"
        assert secret not in log, "a secret is in the server's log"
