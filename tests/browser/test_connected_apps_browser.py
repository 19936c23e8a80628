"""The people's pages in Chromium (the browser, fixtures and helpers of test_browser_pages.py):
a person connects an app, finds it on the Connected apps page, revokes it through the
confirmation; a remembered consent sends a person who just logged in straight back to the
client; a person changes their password. Every page runs under the Content-Security-Policy:
the `tab` fixture fails a test on any violation (the redirect after the login form included).
"""

from __future__ import annotations

import secrets

import httpx2
import pytest
from playwright.sync_api import expect

from tests.browser import test_browser_pages as pages
from tests.browser.test_browser_pages import (
    CLIENT_NAME,
    HTTP_TIMEOUT,
    SCOPE_DESCRIPTION,
    answer_consent,
    assert_at,
    authorization_request,
    exchange_code,
    fill_login,
    log_in_for_consent,
    wait_for_path,
)
from tests.support.live_server import django_shell

pytestmark = pytest.mark.live

# The fixtures of test_browser_pages.py, used here as they are (one Chromium per module).
browser = pages.browser
open_tab = pages.open_tab
tab = pages.tab
callback = pages.callback
oauth_request = pages.oauth_request


def refresh_status(server, client_id: str, refresh_token: str) -> int:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    return httpx2.post(server.url + "/token", data=data, timeout=HTTP_TIMEOUT, trust_env=False).status_code


def connect_in_the_browser(server, tab, callback, request) -> dict:
    """Log in, Allow on the consent page, and exchange the code as the client would."""
    log_in_for_consent(tab.page, server, request)
    query = answer_consent(tab.page, callback, "Allow")
    token = exchange_code(server, request, query["code"])
    assert token.status_code == 200, token.text
    return token.json()


def test_a_person_sees_a_connected_app_and_revokes_it(live_server, tab, callback, oauth_request):
    tokens = connect_in_the_browser(live_server, tab, callback, oauth_request)
    page = tab.page

    page.goto(live_server.url + "/")
    page.get_by_role("banner").get_by_role("link", name="Connected apps").click()
    wait_for_path(page, "/accounts/apps/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Connected apps")
    card = page.locator("section.connected-app")
    expect(card).to_have_count(1)
    expect(card.get_by_role("heading", level=2)).to_have_text(CLIENT_NAME)
    expect(card.locator(".self-registered")).to_contain_text("This application registered itself")
    expect(card.locator("ul.scopes")).to_contain_text(SCOPE_DESCRIPTION)
    expect(card.locator(".tool-calls .count")).to_have_text("0")
    expect(page.locator("#what-the-dates-mean")).to_be_visible()
    tab.screenshot("connected-apps")

    card.get_by_role("link", name="Revoke access…").click()
    wait_for_path(page, f"/accounts/apps/{oauth_request_pk(page)}/revoke/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Revoke access of {CLIENT_NAME}?")
    tab.screenshot("connected-apps-revoke")
    # Looking at the confirmation revoked nothing yet.
    assert refresh_status(live_server, oauth_request.client_id, tokens["refresh_token"]) == 200

    page.get_by_role("button", name="Revoke access").click()  # a POST form with its CSRF token
    wait_for_path(page, "/accounts/apps/")
    expect(page.get_by_role("status")).to_contain_text(f"{CLIENT_NAME} no longer has access")
    expect(page.locator("section.connected-app")).to_have_count(0)
    expect(page.locator("#no-apps")).to_be_visible()
    tab.screenshot("connected-apps-revoked")


def oauth_request_pk(page) -> str:
    """The client's row number, from the confirmation page's address."""
    return page.url.rstrip("/").split("/")[-2]


def test_revoked_tokens_stop_working_and_the_client_must_ask_again(live_server, tab, callback, oauth_request):
    tokens = connect_in_the_browser(live_server, tab, callback, oauth_request)
    page = tab.page
    page.goto(live_server.url + "/accounts/apps/")
    page.get_by_role("link", name="Revoke access…").click()
    page.get_by_role("button", name="Revoke access").click()
    expect(page.locator("#no-apps")).to_be_visible()
    # The refresh rotation gave the client a new refresh token; the one it had is refused.
    assert refresh_status(live_server, oauth_request.client_id, tokens["refresh_token"]) == 400
    # The next authorization of the client shows the consent page again.
    again = authorization_request(live_server, oauth_request.client_id, oauth_request.redirect_uri)
    page.goto(again.url)
    assert_at(page, "/authorize")
    expect(page.get_by_role("button", name="Allow")).to_be_visible()


def test_a_remembered_consent_sends_a_person_who_logs_in_straight_back_to_the_client(
    live_server, open_tab, callback, oauth_request
):
    first = open_tab()
    connect_in_the_browser(live_server, first, callback, oauth_request)
    assert first.broken == []

    # Another browser, signed out: the login page, then straight to the client's callback. The
    # redirect follows the login form's POST, which the login page's form-action must allow.
    second = open_tab()
    again = authorization_request(live_server, oauth_request.client_id, oauth_request.redirect_uri)
    second.page.goto(again.url)
    assert_at(second.page, "/accounts/login/")
    fill_login(second.page, live_server.username, live_server.password)
    second.page.wait_for_url(callback.received)
    code = pages.query_of(callback.urls[-1])["code"]
    assert exchange_code(live_server, again, code).status_code == 200
    assert second.broken == [], "the CSP blocked the redirect after the login form"

    # Signed in already: no page at all.
    third = authorization_request(live_server, oauth_request.client_id, oauth_request.redirect_uri)
    second.page.goto(third.url)
    second.page.wait_for_url(callback.received)
    assert len(callback.urls) == 3
    assert second.broken == []


def _create_user(server) -> tuple[str, str]:
    """A person of their own in the live server's database (so a password change touches nobody else's)."""
    username, password = "person-" + secrets.token_hex(4), secrets.token_urlsafe(18)
    script = (
        "import os\nfrom django.contrib.auth import get_user_model\n"
        "get_user_model().objects.create_user(os.environ['NEW_USERNAME'], password=os.environ['NEW_PASSWORD'])\n"
    )
    result = django_shell(script, {**server.env, "NEW_USERNAME": username, "NEW_PASSWORD": password}, timeout=60)
    assert result.returncode == 0, result.stderr
    return username, password


def test_a_person_changes_their_password(live_server, tab, open_tab):
    username, password = _create_user(live_server)
    new_password = "a new passphrase " + secrets.token_hex(4)
    page = tab.page
    page.goto(live_server.url + "/accounts/login/")
    fill_login(page, username, password)
    page.goto(live_server.url + "/accounts/apps/")
    page.get_by_role("link", name="Change your password").click()
    wait_for_path(page, "/accounts/password/")

    page.get_by_label("Current password").fill("not " + password)
    page.get_by_label("New password", exact=True).fill(new_password)
    page.get_by_label("New password, again").fill(new_password)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#old-password-error")).to_contain_text("Your old password was entered incorrectly")
    tab.screenshot("password-change-error")

    page.get_by_label("Current password").fill(password)
    page.get_by_label("New password", exact=True).fill(new_password)
    page.get_by_label("New password, again").fill(new_password)
    page.get_by_role("button", name="Change password").click()
    wait_for_path(page, "/accounts/password/done/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your password was changed")
    expect(page.get_by_role("banner")).to_contain_text(f"Signed in as {username}")
    tab.screenshot("password-changed")

    other = open_tab()
    other.page.goto(live_server.url + "/accounts/login/")
    fill_login(other.page, username, new_password)
    assert_at(other.page, "/")
    assert other.broken == []
