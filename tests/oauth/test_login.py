"""Django's login page, as the OAuth flow uses it."""

import pytest

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


def test_login_page_renders_with_csrf(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"csrfmiddlewaretoken" in response.content


def test_wrong_password_shows_an_error(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert b"didn't match" in response.content


def test_login_is_csrf_protected(user):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/",
        "//evil.example/",
        "///evil.example/",
        "http:evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "https://testserver@evil.example/",
    ],
)
def test_next_cannot_redirect_off_site(client, user, next_url):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD, "next": next_url})
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_next_on_site_is_followed(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD, "next": "/authorize?x=1"})
    assert response["Location"] == "/authorize?x=1"


def test_logout_is_post_only(client, user):
    client.force_login(user)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 200
    assert b"You are logged out" in response.content


def test_pages_send_no_referrer_to_other_sites(client):
    """same-origin, not no-referrer: with no-referrer browsers post forms with `Origin: null`,
    which Django's CSRF check refuses (seen in headless Chromium, tests/browser/test_browser_pages.py)."""
    assert client.get("/accounts/login/")["Referrer-Policy"] == "same-origin"
