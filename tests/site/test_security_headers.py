"""Browser-side protections: the Content-Security-Policy, framing, Referrer-Policy, HSTS and
cookie flags on each page people see, through Django's test client; HSTS and the cookie
flags of production settings on a live daphne server behind a (simulated) TLS proxy.
tests/browser/test_browser_pages.py shows that Chromium runs every page under this policy with no
violation."""

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from oauth2_provider.views import AuthorizationView

from oauth_app.views.authorize import ConsentView
from tests.support.asgi_client import initialize_message
from tests.support.live_server import PROJECT_DIR, environment_without_configuration
from tests.support.oauth_flow import (
    REDIRECT_URI,
    authorize_params,
    consent_page,
    decide,
    exchange_code,
    pkce_pair,
    register,
)

POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'none'"],
    "object-src": ["'none'"],
}
HOST = "127.0.0.1:8000"  # in ALLOWED_HOSTS; the test client's default "testserver" is not needed here
YEAR = 365 * 24 * 3600


def directives(header: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


def csp_of(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.status_code} {response.get('Content-Type')}"
    return directives(header)


def assert_page_protections(response, form_action=("'self'",)) -> None:
    policy = csp_of(response)
    assert policy == {**POLICY, "form-action": list(form_action)}, policy
    assert "unsafe" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


# ---------------------------------------------------------------------------
# Each page, with the client in the state that shows it
# ---------------------------------------------------------------------------


def _landing(client, user):
    return client.get("/", HTTP_HOST=HOST), 200


def _login(client, user):
    return client.get("/accounts/login/?next=/authorize%3Fclient_id%3Dx"), 200


def _login_failed(client, user):
    return client.post("/accounts/login/", {"username": user.username, "password": "wrong"}), 200


def _logged_out(client, user):
    client.force_login(user)
    return client.post("/accounts/logout/"), 200


def _oauth_error(client, user):
    return client.get("/authorize?response_type=code&client_id=no-such-client&redirect_uri=http://127.0.0.1/cb"), 400


def _consent_already_answered(client, user):
    client.force_login(user)
    return client.post("/authorize", {"request_id": "forged", "decision": "allow"}), 400


def _csrf_failure(client, user):
    strict = Client(enforce_csrf_checks=True)  # the test client skips the CSRF check unless told
    return strict.post("/accounts/login/", {"username": user.username, "password": "x"}), 403


def _admin_login(client, user):
    return client.get("/admin/login/"), 200


def _not_found(client, user):
    return client.get("/no/such/page"), 404


PAGES = {
    "landing": _landing,
    "login": _login,
    "login-failed": _login_failed,
    "logged-out": _logged_out,
    "oauth-error": _oauth_error,
    "consent-already-answered": _consent_already_answered,
    "csrf-failure": _csrf_failure,
    "admin-login": _admin_login,
    "not-found": _not_found,
}


@pytest.mark.django_db
@pytest.mark.parametrize("page", PAGES)
def test_each_page_carries_the_policy_and_refuses_framing(client, user, page):
    response, status = PAGES[page](client, user)
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("text/html")
    assert_page_protections(response)


@pytest.mark.django_db
def test_admin_pages_of_staff_carry_the_policy(client, django_user_model):
    staff = django_user_model.objects.create_superuser("root", "", "a long admin passphrase")
    client.force_login(staff)
    for path in ("/admin/", "/admin/oauth_app/authevent/", "/admin/auth/user/", f"/admin/auth/user/{staff.pk}/change/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_page_protections(response)


# ---------------------------------------------------------------------------
# The consent page: form-action names the client's redirect origin, and nothing wider
# ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "redirect_uri, source",
    [
        (REDIRECT_URI, "http://127.0.0.1:33418"),  # a loopback client's own port
        ("http://[::1]:4711/callback", "http://[::1]:4711"),
        ("https://claude.ai/api/mcp/auth_callback", "https://claude.ai"),
        ("https://app.example.com:8443/oauth/cb", "https://app.example.com:8443"),
        ("cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback", "cursor:"),  # a native app's scheme
    ],
)
def test_consent_page_lets_its_form_redirect_to_the_client_only(logged_in, redirect_uri, source):
    status, registration = register(logged_in, redirect_uris=[redirect_uri])
    assert status == 201, registration
    _verifier, challenge = pkce_pair()
    page = consent_page(logged_in, authorize_params(registration["client_id"], challenge, redirect_uri=redirect_uri))
    assert page.status_code == 200, page.content[:500]
    assert_page_protections(page, form_action=("'self'", source))


@pytest.mark.django_db
def test_a_redirect_host_csp_cannot_name_never_widens_form_action(logged_in):
    """Found by hostile testing: `https://app_x.example/cb` made form-action `'self' https:`."""
    redirect_uri = "https://app_x.example/cb"
    status, registration = register(logged_in, redirect_uris=[redirect_uri])
    assert status == 201, registration
    _verifier, challenge = pkce_pair()
    page = consent_page(logged_in, authorize_params(registration["client_id"], challenge, redirect_uri=redirect_uri))
    assert page.status_code == 200, page.content[:500]
    assert_page_protections(page, form_action=("'self'",))


# ---------------------------------------------------------------------------
# Referrer-Policy: no-referrer on every response that carries a code or an error to the client
# ---------------------------------------------------------------------------


def _location_query(response) -> dict[str, str]:
    assert response.status_code == 302, response.content[:500]
    return {key: values[0] for key, values in parse_qs(urlsplit(response["Location"]).query).items()}


@pytest.mark.django_db
@pytest.mark.parametrize("decision, carried", [("allow", "code"), ("deny", "error")])
def test_consent_answer_redirects_without_referrer(logged_in, decision, carried):
    _status, registration = register(logged_in)
    _verifier, challenge = pkce_pair()
    page = consent_page(logged_in, authorize_params(registration["client_id"], challenge))
    answer = decide(logged_in, page, decision)
    assert carried in _location_query(answer)
    assert answer["Location"].startswith(REDIRECT_URI + "?")
    assert answer["Referrer-Policy"] == "no-referrer"


@pytest.mark.django_db
@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in", "before-login"])
@pytest.mark.parametrize(
    "extra, error",
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"resource": "https://elsewhere.example/mcp"}, "invalid_target"),
    ],
)
def test_error_redirects_go_without_referrer_and_before_any_login(client, user, signed_in, extra, error):
    """Refused requests of a verified client go back to it with no Referer, and at once: not
    after the login form, whose `form-action 'self'` would make the browser block them."""
    if signed_in:
        client.force_login(user)
    _status, registration = register(client)
    _verifier, challenge = pkce_pair()
    response = consent_page(client, authorize_params(registration["client_id"], challenge, **extra))
    assert response["Location"].startswith(REDIRECT_URI + "?")
    assert _location_query(response)["error"] == error
    assert response["Referrer-Policy"] == "no-referrer"


def _views(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _views(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), getattr(pattern.callback, "view_class", None)


def test_the_consent_view_is_the_only_authorization_view():
    """DOT's own AuthorizationView (which sets no Referrer-Policy on its redirects) is reachable
    at no path; /authorize is ours."""
    assert resolve("/authorize").func.view_class is ConsentView
    authorization_views = [
        (path, view)
        for path, view in _views(get_resolver().url_patterns)
        if view is not None and issubclass(view, AuthorizationView)
    ]
    assert authorization_views == [("authorize", ConsentView)]


# ---------------------------------------------------------------------------
# The JSON endpoints and the MCP transports still work
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_json_oauth_endpoints_work_as_before(logged_in):
    metadata = logged_in.get("/.well-known/oauth-authorization-server")
    assert metadata.status_code == 200 and metadata.json()["authorization_endpoint"] == "http://testserver/authorize"
    status, registration = register(logged_in)
    assert status == 201
    verifier, challenge = pkce_pair()
    page = consent_page(logged_in, authorize_params(registration["client_id"], challenge))
    code = _location_query(decide(logged_in, page))["code"]
    token = exchange_code(logged_in, registration["client_id"], code, verifier)
    assert token.status_code == 200 and token["Content-Type"] == "application/json"
    assert token.json()["access_token"]
    revoked = logged_in.post("/revoke", {"token": token.json()["access_token"], "client_id": registration["client_id"]})
    assert revoked.status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.anyio
@pytest.mark.usefixtures("worker")
async def test_mcp_endpoint_works_and_is_outside_django_middleware(shttp):
    """The MCP transports are plain ASGI endpoints behind their own guards: no page, no policy."""
    reply = await shttp.post(initialize_message())
    assert reply.status == 200
    assert "content-security-policy" not in reply.headers
    shttp.session_id = reply.headers["mcp-session-id"]
    assert (await shttp.post({"jsonrpc": "2.0", "method": "notifications/initialized"})).status == 202
    tools = await shttp.request("tools/list")
    assert tools["result"]["tools"]


# ---------------------------------------------------------------------------
# Templates: nothing inline for the policy to block
# ---------------------------------------------------------------------------

TEMPLATES = sorted((PROJECT_DIR / "templates").rglob("*.html"))
INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle\s*=|\son[a-z]+\s*=|javascript:", re.IGNORECASE)


@pytest.mark.parametrize("template", TEMPLATES, ids=[str(t.relative_to(PROJECT_DIR)) for t in TEMPLATES])
def test_templates_have_no_inline_script_or_style(template: Path):
    assert not INLINE.findall(template.read_text()), template


# ---------------------------------------------------------------------------
# Production settings (DJANGO_DEBUG=0): HSTS and cookie flags
# ---------------------------------------------------------------------------

_PRINT_SETTINGS = (
    "import json, mcpsite.settings as s; print(json.dumps({k: getattr(s, k) for k in ("
    "'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SESSION_COOKIE_SECURE', "
    "'SESSION_COOKIE_HTTPONLY', 'CSRF_COOKIE_SECURE')}))"
)


def settings_under(**env: str) -> dict:
    """mcpsite.settings as a process with this environment derives them."""
    clean = environment_without_configuration()
    result = subprocess.run(
        [sys.executable, "-c", _PRINT_SETTINGS],
        cwd=PROJECT_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_debug_off_turns_on_hsts_and_secure_cookies():
    production = settings_under(DJANGO_DEBUG="0")
    assert production == {
        "SECURE_HSTS_SECONDS": YEAR,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SECURE": True,
    }
    development = settings_under(DJANGO_DEBUG="1")
    assert development["SECURE_HSTS_SECONDS"] == 0  # never pin http://localhost to HTTPS
    assert not development["SESSION_COOKIE_SECURE"] and development["SESSION_COOKIE_HTTPONLY"]
    tuned = settings_under(DJANGO_DEBUG="0", MCP_HSTS_SECONDS="600", MCP_HSTS_INCLUDE_SUBDOMAINS="0")
    assert tuned["SECURE_HSTS_SECONDS"] == 600 and tuned["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False


@pytest.fixture(scope="module")
def behind_tls_proxy(live_server_template, tmp_path_factory):
    """A live server with production settings that believes X-Forwarded-Proto from loopback,
    as behind nginx (deploy/nginx): a request sent with `X-Forwarded-Proto: https` is HTTPS to it."""
    from tests.support.live_server import start_live_server

    server = start_live_server(
        live_server_template, tmp_path_factory.mktemp("tls-proxy"), MCP_TRUSTED_PROXIES="127.0.0.1"
    )
    yield server
    server.stop()


def _cookie_flags(response: httpx2.Response, name: str) -> set[str]:
    (header,) = [value for value in response.headers.get_list("set-cookie") if value.startswith(name + "=")]
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}


@pytest.mark.live
def test_https_responses_carry_hsts_and_secure_httponly_cookies(behind_tls_proxy):
    server = behind_tls_proxy
    origin = "https://" + urlsplit(server.url).netloc
    with httpx2.Client(
        base_url=server.url, headers={"X-Forwarded-Proto": "https"}, timeout=10, trust_env=False
    ) as http:
        page = http.get("/accounts/login/")
        assert page.status_code == 200
        assert page.headers["Strict-Transport-Security"] == f"max-age={YEAR}; includeSubDomains"
        assert {"secure", "samesite"} <= _cookie_flags(page, "csrftoken")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        login = http.post(
            "/accounts/login/",
            data={"username": server.username, "password": server.password, "csrfmiddlewaretoken": csrf},
            # The cookie is Secure and this hop is plain http (nginx's side): the jar would hold it back.
            headers={"Origin": origin, "Cookie": f"csrftoken={page.cookies['csrftoken']}"},
        )
        assert login.status_code == 302, login.text[:500]
        assert {"secure", "httponly", "samesite"} <= _cookie_flags(login, "sessionid")
        assert login.headers["Strict-Transport-Security"] == f"max-age={YEAR}; includeSubDomains"


@pytest.mark.live
def test_plain_http_responses_carry_no_hsts(behind_tls_proxy):
    """HSTS over plain HTTP means nothing to a browser; Django sends it on HTTPS only."""
    response = httpx2.get(behind_tls_proxy.url + "/", timeout=10, trust_env=False)
    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response.headers
    assert directives(response.headers["Content-Security-Policy"]) == POLICY
