"""A person changes their own password (/accounts/password/): Django's views in the site's
style, the current password checked as a login is (django-axes counts a wrong one and locks the
account out; the auth event trail records it), the password validators, CSRF."""

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client

from oauth_app.models import AuthEvent
from tests.site.test_security_headers import assert_page_protections

pytestmark = pytest.mark.django_db

PAGE = "/accounts/password/"
PASSWORD = "correct horse battery staple"  # the `user` fixture's (alice)
NEW_PASSWORD = "a brand new passphrase for alice"


def change(browser, old: str = PASSWORD, new1: str = NEW_PASSWORD, new2: str | None = None, **extra):
    data = {"old_password": old, "new_password1": new1, "new_password2": new1 if new2 is None else new2}
    return browser.post(PAGE, data, **extra)


def password_is(password: str) -> bool:
    return get_user_model().objects.get(username="alice").check_password(password)


def test_the_page_needs_a_login(client, user):
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")
    response = change(client)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")
    assert password_is(PASSWORD)


def test_the_form_in_the_sites_style(logged_in):
    page = logged_in.get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<h1>Change your password</h1>" in html
    assert 'href="/static/mcpsite/site.css"' in html
    assert "csrfmiddlewaretoken" in html
    assert 'autocomplete="current-password"' in html and 'autocomplete="new-password"' in html
    assert "Your password must contain at least 8 characters." in html  # the validators' rules
    assert_page_protections(page)
    # The Connected apps page links here.
    assert f'href="{PAGE}"' in logged_in.get("/accounts/apps/").content.decode()


def test_a_change_keeps_this_session_and_ends_the_others(logged_in, user):
    elsewhere = Client()
    elsewhere.force_login(user)
    response = change(logged_in)
    assert response.status_code == 302 and response["Location"] == "/accounts/password/done/"
    assert password_is(NEW_PASSWORD)
    done = logged_in.get(response["Location"])
    assert done.status_code == 200 and b"Your password was changed" in done.content
    assert_page_protections(done)
    assert logged_in.get("/accounts/apps/").status_code == 200  # still signed in here
    assert elsewhere.get("/accounts/apps/").status_code == 302  # the other session is over
    # The new password logs in, the old one no more.
    fresh = Client()
    assert fresh.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 200
    assert fresh.post("/accounts/login/", {"username": "alice", "password": NEW_PASSWORD}).status_code == 302


@pytest.mark.parametrize(
    "new1, new2, message",
    [
        ("short1", None, "This password is too short."),
        ("password123", None, "This password is too common."),
        ("48203917562011", None, "This password is entirely numeric."),
        ("xalicex99", None, "The password is too similar to the username."),
        (NEW_PASSWORD, "something else entirely", "The two password fields didn’t match."),
    ],
)
def test_the_password_validators_apply(logged_in, new1, new2, message):
    response = change(logged_in, new1=new1, new2=new2)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert password_is(PASSWORD)


def test_a_wrong_current_password_is_refused_counted_and_recorded(logged_in, user):
    response = change(logged_in, old="not my password", REMOTE_ADDR="192.0.2.77")
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    assert password_is(PASSWORD)
    # django-axes counted it as a failed login of alice, from that address.
    attempt = AccessAttempt.objects.get(username="alice")
    assert attempt.failures_since_start == 1 and attempt.ip_address == "192.0.2.77"
    event = AuthEvent.objects.get(kind=AuthEvent.Kind.LOGIN_FAILED)
    assert event.user == user
    assert "not my password" not in event.detail


def test_guessing_the_current_password_locks_the_account_out(logged_in, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for n in range(2):
        assert change(logged_in, old=f"guess {n}", REMOTE_ADDR="192.0.2.78").status_code == 200
    locked = change(logged_in, old="guess 2", REMOTE_ADDR="192.0.2.78")
    assert locked.status_code == 429 and b"Too many failed logins" in locked.content
    # Even the right password changes nothing now, and the login form is locked too.
    assert change(logged_in, REMOTE_ADDR="192.0.2.79").status_code == 429
    assert password_is(PASSWORD)
    fresh = Client()
    assert fresh.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 429
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.LOCKED_OUT).exists()


def test_the_form_is_csrf_protected(user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    response = change(browser)
    assert response.status_code == 403 and b"This form has expired" in response.content
    assert password_is(PASSWORD)
    token = browser.get(PAGE).context["csrf_token"]
    assert (
        browser.post(
            PAGE,
            {
                "old_password": PASSWORD,
                "new_password1": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD,
                "csrfmiddlewaretoken": str(token),
            },
        ).status_code
        == 302
    )
    assert password_is(NEW_PASSWORD)


def test_the_admins_own_password_pages_keep_the_admins_style(client, django_user_model):
    staff = django_user_model.objects.create_superuser("root", "", "a long admin passphrase")
    client.force_login(staff)
    page = client.get("/admin/password_change/")
    assert page.status_code == 200
    assert b"admin/css/" in page.content and b"mcpsite/site.css" not in page.content
