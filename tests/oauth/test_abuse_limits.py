"""Abuse limits: login lockout (django-axes) and per-address rate limits on the
OAuth endpoints (moving windows, oauth_app/ratelimit.py; tests/oauth/test_rate_windows.py).

Addresses come from the documentation ranges (RFC 5737) so each test picks its own.
"""

import json
import subprocess
import sys
from datetime import timedelta
from http.cookiejar import CookieJar
from pathlib import Path

import httpx2
import pytest
from axes.models import AccessAttempt
from django.test import override_settings
from django.utils import timezone

from tests.support.browser import _LoopbackIsSecure, find_form
from tests.support.live_server import environment_without_configuration
from tests.support.oauth_flow import (
    authorize_params,
    consent_page,
    decide,
    exchange_code,
    full_flow,
    pkce_pair,
    redirect_query,
    register,
)

PASSWORD = "correct horse battery staple"  # the `user` fixture's (alice)
OTHER_PASSWORD = "another long passphrase"  # the `other_user` fixture's (mallory)
STAFF_PASSWORD = "staff pass phrase for tests"
LOCKOUT_SECONDS = 15 * 60  # MCP_LOGIN_LOCKOUT_MINUTES' default


def log_in(client, username: str, password: str, address: str):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def assert_lockout_page(response):
    assert response.status_code == 429
    assert response["Retry-After"] == str(LOCKOUT_SECONDS)
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    assert "Too many failed logins" in html
    assert "Try again in 15 minutes" in html
    assert "<script" not in html  # the page works under a CSP without inline script
    assert "_auth_user_id" not in response.client.session  # nobody was logged in


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser(username="staff", password=STAFF_PASSWORD, email="")


# ---------------------------------------------------------------------------
# Login lockout
# ---------------------------------------------------------------------------
@pytest.mark.django_db
def test_failures_for_one_username_lock_it_out_from_every_address(client, user, other_user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for n in range(2):  # a guesser spreading its tries over addresses
        assert log_in(client, "alice", f"guess {n}", f"192.0.2.{n + 1}").status_code == 200
    # The failure that reaches the limit is answered with the lockout page ...
    assert_lockout_page(log_in(client, "alice", "guess 2", "192.0.2.3"))
    # ... and now even the right password, from an address never seen before, is refused.
    assert_lockout_page(log_in(client, "alice", PASSWORD, "198.51.100.1"))
    # Other accounts are not affected, from that address or any other.
    assert log_in(client, "mallory", OTHER_PASSWORD, "198.51.100.1").status_code == 302


@pytest.mark.django_db
def test_failures_from_one_address_lock_it_out_for_every_account(client, user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for name in ("root", "admin"):  # one address trying many accounts
        assert log_in(client, name, "guess", "192.0.2.50").status_code == 200
    assert_lockout_page(log_in(client, "bob", "guess", "192.0.2.50"))
    assert_lockout_page(log_in(client, "alice", PASSWORD, "192.0.2.50"))
    # The same account from another address logs in: the address is what is locked.
    assert log_in(client, "alice", PASSWORD, "192.0.2.51").status_code == 302


@pytest.mark.django_db
def test_below_the_limit_the_right_password_still_logs_in(client, user):
    for n in range(4):  # the default limit is 5
        assert log_in(client, "alice", f"typo {n}", "192.0.2.60").status_code == 200
    assert log_in(client, "alice", PASSWORD, "192.0.2.60").status_code == 302


@pytest.mark.django_db
def test_the_lockout_ends_after_the_cool_off(client, user, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        log_in(client, "alice", "guess", "192.0.2.70")
    assert log_in(client, "alice", PASSWORD, "192.0.2.70").status_code == 429
    # Age the recorded attempts past the cool-off instead of waiting 15 minutes.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(seconds=LOCKOUT_SECONDS + 1))
    assert log_in(client, "alice", PASSWORD, "192.0.2.70").status_code == 302


@pytest.mark.django_db
def test_the_admin_login_is_guarded_too(client, staff, settings):
    settings.AXES_FAILURE_LIMIT = 2
    response = client.post("/admin/login/", {"username": "staff", "password": "guess"}, REMOTE_ADDR="192.0.2.80")
    assert response.status_code == 200
    response = client.post("/admin/login/", {"username": "staff", "password": "guess"}, REMOTE_ADDR="192.0.2.80")
    assert response.status_code == 429
    response = client.post("/admin/login/", {"username": "staff", "password": STAFF_PASSWORD}, REMOTE_ADDR="192.0.2.81")
    assert_lockout_page(response)


@pytest.mark.django_db
def test_staff_see_the_lockout_in_the_admin_and_lift_it(client, user, staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for n in range(3):
        log_in(client, "alice", f"guess {n}", "192.0.2.90")
    assert log_in(client, "alice", PASSWORD, "192.0.2.90").status_code == 429

    admin = type(client)()  # the staff member's own browser, logging in through the real admin form
    response = admin.post(
        "/admin/login/",
        {"username": "staff", "password": STAFF_PASSWORD, "next": "/admin/"},
        REMOTE_ADDR="198.51.100.20",
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    listing = admin.get("/admin/axes/accessattempt/", {"q": "alice"})
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "alice" in html and "192.0.2.90" in html and "Locked Out" in html

    # "Delete selected access attempts", confirmed, as the admin's changelist sends it.
    attempts = list(AccessAttempt.objects.filter(username="alice").values_list("pk", flat=True))
    assert attempts
    response = admin.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": attempts, "post": "yes"},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(username="alice").exists()

    assert log_in(client, "alice", PASSWORD, "192.0.2.90").status_code == 302


@pytest.mark.django_db
def test_passwords_are_neither_logged_nor_stored(client, user, settings, caplog):
    settings.AXES_FAILURE_LIMIT = 2
    secret_guess = "hunter2-secret-guess"
    with caplog.at_level("DEBUG"):
        for _ in range(3):
            log_in(client, "alice", secret_guess, "192.0.2.100")
        log_in(client, "alice", PASSWORD, "192.0.2.100")
    assert "AXES" in caplog.text  # axes did log the failures and the lockout ...
    assert secret_guess not in caplog.text and PASSWORD not in caplog.text  # ... without the passwords
    stored = " ".join(f"{a.get_data} {a.post_data}" for a in AccessAttempt.objects.all())
    assert stored and secret_guess not in stored and PASSWORD not in stored


def test_limits_come_from_the_environment():
    env = environment_without_configuration()
    env.update(
        DJANGO_SETTINGS_MODULE="mcpsite.settings",
        MCP_LOGIN_FAILURE_LIMIT="7",
        MCP_LOGIN_LOCKOUT_MINUTES="2",
        MCP_TOKEN_REQUESTS_PER_MINUTE="11",
        MCP_AUTHORIZE_REQUESTS_PER_MINUTE="12",
        MCP_REVOKE_REQUESTS_PER_MINUTE="13",
        MCP_REGISTRATIONS_PER_HOUR="14",
        MCP_REGISTRATION_MANAGEMENT_REQUESTS_PER_MINUTE="15",
    )
    code = (
        "from django.conf import settings as s; print(s.AXES_FAILURE_LIMIT, int(s.AXES_COOLOFF_TIME.total_seconds()),"
        " s.MCP_TOKEN_REQUESTS_PER_MINUTE, s.MCP_AUTHORIZE_REQUESTS_PER_MINUTE, s.MCP_REVOKE_REQUESTS_PER_MINUTE,"
        " s.MCP_REGISTRATIONS_PER_HOUR, s.MCP_REGISTRATION_MANAGEMENT_REQUESTS_PER_MINUTE, s.AXES_LOCKOUT_PARAMETERS)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == "7 120 11 12 13 14 15 [['username'], ['ip_address']]"


# ---------------------------------------------------------------------------
# Per-address rate limits on /register, /token, /authorize, /revoke
# ---------------------------------------------------------------------------
REGISTRATION = json.dumps({"redirect_uris": ["http://127.0.0.1:33418/callback"], "token_endpoint_auth_method": "none"})
ENDPOINTS = {
    # path: (setting, window seconds, one request as (method, data, content type))
    "/register": ("MCP_REGISTRATIONS_PER_HOUR", 3600, ("post", REGISTRATION, "application/json")),
    "/token": (
        "MCP_TOKEN_REQUESTS_PER_MINUTE",
        60,
        ("post", "grant_type=authorization_code&code=x&client_id=y", "application/x-www-form-urlencoded"),
    ),
    "/revoke": (
        "MCP_REVOKE_REQUESTS_PER_MINUTE",
        60,
        ("post", "token=x&client_id=y", "application/x-www-form-urlencoded"),
    ),
    "/authorize": ("MCP_AUTHORIZE_REQUESTS_PER_MINUTE", 60, ("get", None, None)),
}


def send(client, path: str, address: str, method_data=None):
    method, data, content_type = method_data or ENDPOINTS[path][2]
    if method == "get":
        return client.get(path, {"response_type": "code", "client_id": "nobody"}, REMOTE_ADDR=address)
    return client.post(path, data=data, content_type=content_type, REMOTE_ADDR=address)


@pytest.mark.django_db
@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_each_endpoint_answers_429_past_its_limit_per_address(client, settings, path):
    setting, window, _ = ENDPOINTS[path]
    setattr(settings, setting, 2)
    under = [send(client, path, "203.0.113.1").status_code for _ in range(2)]
    assert 429 not in under and all(status < 500 for status in under), under

    response = send(client, path, "203.0.113.1")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= window
    assert response["Cache-Control"] == "no-store"
    if path == "/authorize":  # a person's browser: a page that says what happened
        assert response["Content-Type"].startswith("text/html")
        html = response.content.decode()
        assert "temporarily_unavailable" in html and "Too many authorization requests" in html
        assert "<script" not in html
    else:
        body = response.json()
        assert body["error"] == "temporarily_unavailable"
        assert "from this address" in body["error_description"]

    # Another address is not affected.
    assert send(client, path, "203.0.113.2").status_code not in (429, 503)


@pytest.mark.django_db
def test_the_limit_counts_the_address_the_site_trusts_not_x_forwarded_for(client, settings):
    """No trusted proxy is configured: a client's own X-Forwarded-For must not buy it fresh counters."""
    settings.MCP_TOKEN_REQUESTS_PER_MINUTE = 2
    statuses = [
        client.post(
            "/token",
            {"grant_type": "authorization_code"},
            REMOTE_ADDR="203.0.113.5",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        ).status_code
        for n in range(3)
    ]
    assert statuses[:2] != [429, 429] and statuses[2] == 429


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/register", "/token", "/revoke"])
def test_cors_preflights_are_not_counted(client, settings, path):
    setattr(settings, ENDPOINTS[path][0], 1)
    for _ in range(3):
        preflight = client.options(
            path,
            HTTP_ORIGIN="https://inspector.example",
            HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
            REMOTE_ADDR="203.0.113.10",
        )
        assert preflight.status_code == 200
        assert preflight["Access-Control-Allow-Origin"] == "*"
        bare = client.options(path, REMOTE_ADDR="203.0.113.10")  # an OPTIONS that is no preflight
        assert bare.status_code != 429
    # The one request the limit allows is still there.
    assert send(client, path, "203.0.113.10").status_code != 429
    assert send(client, path, "203.0.113.10").status_code == 429


@pytest.mark.django_db
def test_a_whole_flow_fits_in_the_smallest_limits(logged_in, settings):
    """Register, authorize (GET + consent POST), exchange, refresh and revoke, with every
    limit set to just what the flow needs: nothing a client does normally is refused."""
    settings.MCP_REGISTRATIONS_PER_HOUR = 1
    settings.MCP_AUTHORIZE_REQUESTS_PER_MINUTE = 2
    settings.MCP_TOKEN_REQUESTS_PER_MINUTE = 2
    settings.MCP_REVOKE_REQUESTS_PER_MINUTE = 1
    status, registration = register(logged_in)
    assert status == 201
    client_id = registration["client_id"]
    verifier, challenge = pkce_pair()
    page = consent_page(logged_in, authorize_params(client_id, challenge))
    assert page.status_code == 200
    code = redirect_query(decide(logged_in, page))["code"]
    tokens = exchange_code(logged_in, client_id, code, verifier)
    assert tokens.status_code == 200, tokens.content
    refreshed = logged_in.post(
        "/token",
        {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": tokens.json()["refresh_token"]},
    )
    assert refreshed.status_code == 200, refreshed.content
    revoked = logged_in.post("/revoke", {"token": refreshed.json()["access_token"], "client_id": client_id})
    assert revoked.status_code == 200
    # ... and the next request of each kind is the one refused.
    assert register(logged_in)[0] == 429
    assert logged_in.post("/revoke", {"token": "x", "client_id": client_id}).status_code == 429


@pytest.mark.django_db
def test_the_default_limits_let_a_flow_through(logged_in):
    client_id, tokens = full_flow(logged_in)
    assert logged_in.post("/revoke", {"token": tokens["access_token"], "client_id": client_id}).status_code == 200


@pytest.mark.django_db
def test_an_unreachable_counter_store_answers_503_fast(client):
    """With Redis down the limits cannot count: the endpoint says so (503 + Retry-After), never 500.
    (tests/oauth/test_rate_windows.py: logged once, and counting again once Redis is back.)"""
    # Nothing listens on port 1: connection refused at once.
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = client.post("/token", {"grant_type": "authorization_code"}, REMOTE_ADDR="203.0.113.30")
        page = client.get("/authorize", {"client_id": "x"}, REMOTE_ADDR="203.0.113.30")
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert int(response["Retry-After"]) > 0
    assert page.status_code == 503 and int(page["Retry-After"]) > 0


# ---------------------------------------------------------------------------
# Through daphne: the ASGI middleware path production runs
# ---------------------------------------------------------------------------
@pytest.mark.live
def test_lockout_and_rate_limit_on_a_live_server(live_server_factory):
    server = live_server_factory(MCP_LOGIN_FAILURE_LIMIT="2", MCP_TOKEN_REQUESTS_PER_MINUTE="2")
    with httpx2.Client(
        base_url=server.url,
        cookies=CookieJar(_LoopbackIsSecure()),
        follow_redirects=False,
        timeout=15,
        trust_env=False,
        headers={"origin": server.url},
    ) as browser:

        def log_in_live(password: str) -> httpx2.Response:
            page = browser.get("/accounts/login/")
            form = find_form(page.text, "csrfmiddlewaretoken")
            assert form is not None, page.text[:500]
            return browser.post(
                "/accounts/login/", data={**form.fields, "username": server.username, "password": password}
            )

        assert log_in_live("wrong one").status_code == 200
        assert log_in_live("wrong two").status_code == 429  # the failure that reaches the limit
        locked = log_in_live(server.password)
        assert locked.status_code == 429, locked.text[:500]
        assert locked.headers["retry-after"] == str(LOCKOUT_SECONDS)
        assert locked.headers["cache-control"] == "no-store"
        assert locked.headers["x-frame-options"] == "DENY"  # it went back out through the site's middleware
        assert "Too many failed logins" in locked.text

        # /token through daphne: the third request from this address is refused, whatever it claims.
        statuses = [
            browser.post(
                "/token", data={"grant_type": "authorization_code"}, headers={"x-forwarded-for": f"198.51.100.{n}"}
            ).status_code
            for n in range(3)
        ]
        assert statuses[2] == 429 and 429 not in statuses[:2], statuses
    assert "Traceback" not in server.stderr()
