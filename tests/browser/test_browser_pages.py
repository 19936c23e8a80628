"""The pages people see, in a real browser: Debian's Chromium, headless, driven by
Playwright, against a live daphne server with production settings (DEBUG off,
so the session and CSRF cookies are `Secure`; Chromium counts http://127.0.0.1
as a secure context and keeps them).

The OAuth client is played by this test: it registers over HTTP (RFC 7591),
builds the authorization URL with PKCE S256, receives the browser at its own
loopback redirect URI (a small HTTP server in a thread, like a native app's)
and exchanges the code at /token.

Screenshots of each page go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    expect,
    sync_playwright,
)

from tests.support.live_server import PROJECT_DIR, django_shell
from tests.support.oauth_flow import pkce_pair

pytestmark = pytest.mark.live

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; `make test` installs it. Never a downloaded browser.
# Playwright adds --headless itself. No network but loopback here: without the background
# networking switches Chromium keeps trying (and failing) to reach Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests may run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAUNCH_TIMEOUT_MS = 30_000
ACTION_TIMEOUT_MS = 10_000  # bounds every action and navigation; expect() keeps its own 5 s
HTTP_TIMEOUT = 10.0
SCREENSHOTS = PROJECT_DIR / "test-artifacts" / "screenshots"

CLIENT_NAME = "Browser Test Client"
SCOPE_DESCRIPTION = "Use the tools on this MCP server as you"  # settings.OAUTH2_PROVIDER["SCOPES"]["mcp"]
LOGIN_FAILED = "Your username and password didn't match. Please try again."
ANSWERED = "This authorization request has expired or was already answered."
# The callback page the fake client shows. Its script only runs when JavaScript is on, which lets
# the no-JavaScript test check that the browser really ran without it.
CALLBACK_TITLE = "Callback received"
CALLBACK_PAGE = (
    f"<!doctype html><title>{CALLBACK_TITLE}</title><p>The client got the callback.</p>"
    "<script>document.title += ' (script ran)'</script>"
).encode()


# ---------------------------------------------------------------------------
# Browser fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Browser:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"{CHROMIUM} not found: the browser tests drive Debian's chromium package. "
            "`make test` installs it (as root: apt-get install chromium); Playwright must not download a browser.",
            pytrace=False,
        )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        # A non-persistent launch: Playwright gives Chromium a new, empty user-data dir.
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=LAUNCH_TIMEOUT_MS
        )
        yield browser
        browser.close()


class CallbackServer:
    """The client's loopback redirect URI: records every callback the browser brings."""

    def __init__(self):
        recorded = self.urls = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if urlsplit(self.path).path != "/callback":  # the browser also asks for /favicon.ico
                    self.send_error(404)
                    return
                recorded.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(CALLBACK_PAGE)))
                self.end_headers()
                self.wfile.write(CALLBACK_PAGE)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.redirect_uri = f"http://127.0.0.1:{self._server.server_port}/callback"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def received(self, url: str) -> bool:
        return url.startswith(self.redirect_uri + "?")

    def query(self) -> dict[str, str]:
        """The query of the one callback received so far."""
        (path,) = self.urls
        return query_of(path)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def callback():
    server = CallbackServer()
    yield server
    server.close()


@dataclass
class Tab:
    """A page in a fresh browser context, and the page's broken sub-resources
    (a missing stylesheet, a script error or anything the Content-Security-Policy
    blocked shows up here)."""

    page: Page
    context: BrowserContext
    broken: list[str]

    def screenshot(self, name: str) -> None:
        self.page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


@pytest.fixture
def open_tab(browser):
    """`open_tab(**context_options)`: a new page in its own new context (no cookies, no cache)."""
    contexts = []

    def open_(**options) -> Tab:
        context = browser.new_context(viewport={"width": 1024, "height": 768}, **options)
        contexts.append(context)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.set_default_navigation_timeout(ACTION_TIMEOUT_MS)
        page = context.new_page()
        broken = []

        # Pages themselves may be 400 or 403 on purpose; what they load (CSS) must not fail.
        def check_response(response: Response) -> None:
            if response.request.resource_type != "document" and response.status >= 400:
                broken.append(f"{response.status} {response.url}")

        def check_failure(request: Request) -> None:
            if request.resource_type != "document":
                broken.append(f"{request.failure} {request.url}")

        # Chromium reports what the page's Content-Security-Policy blocked (an inline style, a
        # script, a form post or redirect off the site) as a console message naming the policy.
        def check_console(message: ConsoleMessage) -> None:
            if "Content Security Policy" in message.text:
                broken.append(f"CSP violation: {message.text}")

        page.on("response", check_response)
        page.on("requestfailed", check_failure)
        page.on("pageerror", lambda error: broken.append(f"page error: {error}"))
        page.on("console", check_console)
        return Tab(page, context, broken)

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def tab(open_tab) -> Tab:
    tab = open_tab()
    yield tab
    assert tab.broken == [], "sub-resources failed to load, a script failed, or the CSP blocked something"


# ---------------------------------------------------------------------------
# The OAuth client's side (plain HTTP, no browser)
# ---------------------------------------------------------------------------


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def register_client(server, redirect_uri: str, name: str = CLIENT_NAME) -> str:
    body = {"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none", "client_name": name}
    response = httpx2.post(server.url + "/register", json=body, timeout=HTTP_TIMEOUT, trust_env=False)
    assert response.status_code == 201, response.text
    return response.json()["client_id"]


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    verifier: str
    state: str
    url: str


def authorization_request(server, client_id: str, redirect_uri: str) -> AuthorizationRequest:
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": state,
        "scope": "mcp",
    }
    return AuthorizationRequest(client_id, redirect_uri, verifier, state, f"{server.url}/authorize?{urlencode(params)}")


@pytest.fixture
def oauth_request(live_server, callback) -> AuthorizationRequest:
    """The authorization request of a client that just registered itself, redirecting to `callback`."""
    client_id = register_client(live_server, callback.redirect_uri)
    return authorization_request(live_server, client_id, callback.redirect_uri)


def exchange_code(server, request: AuthorizationRequest, code: str) -> httpx2.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": request.redirect_uri,
        "client_id": request.client_id,
        "code_verifier": request.verifier,
    }
    return httpx2.post(server.url + "/token", data=data, timeout=HTTP_TIMEOUT, trust_env=False)


# ---------------------------------------------------------------------------
# What the person does
# ---------------------------------------------------------------------------


def path_of(url: str) -> str:
    return urlsplit(url).path


def wait_for_path(page: Page, path: str) -> None:
    page.wait_for_url(lambda url: path_of(url) == path)


def assert_at(page: Page, path: str) -> None:
    """The page is at `path`; if not, the failure shows what the page says instead."""
    assert path_of(page.url) == path, f"expected {path}, at {page.url}:\n{page.locator('main').inner_text()[:1000]}"


def fill_login(page: Page, username: str, password: str) -> None:
    """Fill and send the login form; return when the page it leads to has loaded."""
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()


def log_in_for_consent(page: Page, server, request: AuthorizationRequest) -> None:
    """Open the authorization URL, get sent to the login page, log in, land on the consent page."""
    page.goto(request.url)
    assert_at(page, "/accounts/login/")
    fill_login(page, server.username, server.password)
    assert_at(page, "/authorize")
    expect(page.get_by_role("button", name="Allow")).to_be_visible()


def answer_consent(page: Page, callback: CallbackServer, decision: str) -> dict[str, str]:
    """Click Allow or Deny; return the query the client's redirect URI received."""
    page.get_by_role("button", name=decision).click()
    page.wait_for_url(callback.received)
    return callback.query()


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def test_landing_page_shows_this_servers_urls_and_claude_desktop_config(live_server, tab):
    page = tab.page
    response = page.goto(live_server.url + "/")
    assert response.status == 200
    expect(page).to_have_title("MCP server")
    expect(page.get_by_role("heading", level=1)).to_have_text("A remote MCP server")
    expect(page.locator("#mcp-url")).to_have_text(live_server.url + "/mcp")
    expect(page.locator("#sse-url")).to_have_text(live_server.url + "/sse")
    config = json.loads(page.locator("#claude-desktop-config").inner_text())
    assert config == {
        "mcpServers": {"django-mcp": {"command": "npx", "args": ["mcp-remote", live_server.url + "/mcp"]}}
    }
    expect(page.get_by_text(f"claude mcp add --transport http django-mcp {live_server.url}/mcp")).to_be_visible()
    # The stylesheet is served with DEBUG off (whitenoise) and applied.
    expect(page.locator("body")).to_have_css("background-color", "rgb(246, 248, 250)")
    expect(page.locator(".card").first).to_have_css("background-color", "rgb(255, 255, 255)")
    tab.screenshot("landing")


def test_form_posts_carry_this_servers_origin(live_server, tab):
    """Django's CSRF check compares a POST's Origin header with the site. A browser sends
    `Origin: null` from a page served with `Referrer-Policy: no-referrer`, and then every form
    on the site (login, consent, logout, the admin's) gets the CSRF failure page."""
    page = tab.page
    page.goto(live_server.url + "/accounts/login/")
    with page.expect_request(lambda request: request.method == "POST") as posted:
        fill_login(page, live_server.username, "not-" + live_server.password)
    origin = posted.value.all_headers().get("origin")
    assert origin == live_server.url, (
        f"the login form was posted with Origin: {origin}; check SECURE_REFERRER_POLICY "
        "(no-referrer makes browsers send Origin: null, which the CSRF check refuses)"
    )
    expect(page.get_by_role("alert")).to_have_text(LOGIN_FAILED)


def test_login_consent_allow_redirects_with_a_code_that_works(live_server, tab, callback, oauth_request):
    page = tab.page
    page.goto(oauth_request.url)
    # Not logged in: the login page, which will come back to this very request.
    assert_at(page, "/accounts/login/")
    assert live_server.url + query_of(page.url)["next"] == oauth_request.url
    expect(page.get_by_text("An application is asking to connect to your account")).to_be_visible()
    expect(page.get_by_label("Username")).to_be_focused()  # autofocus
    tab.screenshot("login")

    fill_login(page, live_server.username, "not-" + live_server.password)
    expect(page.get_by_role("alert")).to_have_text(LOGIN_FAILED)
    assert_at(page, "/accounts/login/")
    expect(page.get_by_label("Username")).to_have_value(live_server.username)
    expect(page.get_by_label("Password")).to_have_value("")
    tab.screenshot("login-error")

    fill_login(page, live_server.username, live_server.password)
    assert_at(page, "/authorize")
    assert page.url == oauth_request.url
    # DEBUG is off, so the cookies are Secure; Chromium keeps them and sends them to http://127.0.0.1.
    cookies = {cookie["name"]: cookie for cookie in tab.context.cookies()}
    assert cookies["sessionid"]["secure"] and cookies["sessionid"]["httpOnly"], cookies
    assert cookies["csrftoken"]["secure"], cookies

    expect(page.locator("#client-name")).to_have_text(CLIENT_NAME)
    expect(page.locator("#self-registered")).to_contain_text("This application registered itself")
    expect(page.locator("ul.scopes")).to_contain_text(SCOPE_DESCRIPTION)
    expect(page.locator("ul.scopes")).to_contain_text("(mcp)")
    expect(page.locator("#redirect-host")).to_have_text(urlsplit(callback.redirect_uri).netloc)
    expect(page.get_by_role("banner")).to_contain_text(f"Signed in as {live_server.username}")
    tab.screenshot("consent")

    query = answer_consent(page, callback, "Allow")
    assert set(query) == {"code", "state", "iss"}, query
    assert query["state"] == oauth_request.state
    assert query["iss"] == live_server.url  # RFC 9207
    expect(page).to_have_title(CALLBACK_TITLE + " (script ran)")

    token = exchange_code(live_server, oauth_request, query["code"])
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"].lower() == "bearer"
    assert body["access_token"] and body["refresh_token"]
    assert body["scope"] == "mcp"
    # Single use: the same code again is refused.
    assert exchange_code(live_server, oauth_request, query["code"]).status_code == 400


def test_deny_redirects_with_access_denied_and_no_code(live_server, tab, callback, oauth_request):
    log_in_for_consent(tab.page, live_server, oauth_request)

    query = answer_consent(tab.page, callback, "Deny")
    assert query["error"] == "access_denied"
    assert query["state"] == oauth_request.state
    assert query["iss"] == live_server.url
    assert "code" not in query


def test_login_and_consent_work_without_javascript(live_server, open_tab, callback, oauth_request):
    tab = open_tab(java_script_enabled=False)
    page = tab.page
    page.goto(oauth_request.url)
    fill_login(page, live_server.username, "not-" + live_server.password)
    expect(page.get_by_role("alert")).to_have_text(LOGIN_FAILED)
    fill_login(page, live_server.username, live_server.password)
    assert_at(page, "/authorize")
    expect(page.locator("#client-name")).to_have_text(CLIENT_NAME)

    query = answer_consent(page, callback, "Allow")
    assert query["state"] == oauth_request.state
    expect(page).to_have_title(CALLBACK_TITLE)  # the callback page's script did not run: JavaScript was off
    assert exchange_code(live_server, oauth_request, query["code"]).status_code == 200
    assert tab.broken == []


def test_unknown_client_gets_an_error_page_not_a_login_or_redirect(live_server, tab, callback):
    request = authorization_request(live_server, "no-such-client", callback.redirect_uri)
    response = tab.page.goto(request.url)
    assert response.status == 400
    assert tab.page.url == request.url  # not redirected: neither to the login page nor to the redirect URI
    expect(tab.page.get_by_role("heading", level=1)).to_have_text("This authorization request can't be completed")
    expect(tab.page.get_by_role("alert")).to_contain_text("invalid_request")
    expect(tab.page.get_by_role("alert")).to_contain_text("client_id")
    expect(tab.page.get_by_text("Nothing was shared with the application")).to_be_visible()
    assert callback.urls == []
    tab.screenshot("error-unknown-client")


def test_consent_form_answers_once(live_server, tab, callback, oauth_request):
    """The consent page from before an answer (back button, restored tab, double submit)
    cannot be answered again: its request id is used up."""
    page = tab.page
    log_in_for_consent(page, live_server, oauth_request)
    stale = page.content()
    assert "code" in answer_consent(page, callback, "Allow")

    # The browser shows the consent page as it was and the person answers it again. (Going back
    # would fetch a new page: the consent page is never cached. So the old one is served from here.)
    def is_consent_page(url: str) -> bool:
        return url == oauth_request.url

    page.route(is_consent_page, lambda route: route.fulfill(content_type="text/html; charset=utf-8", body=stale))
    page.goto(oauth_request.url)
    page.unroute(is_consent_page)
    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.get_by_role("button", name="Allow").click()
    assert posted.value.status == 400
    expect(page.get_by_role("alert")).to_contain_text(ANSWERED)
    assert_at(page, "/authorize")
    assert len(callback.urls) == 1  # no second code
    tab.screenshot("consent-already-answered")


def test_forged_consent_form_is_refused(live_server, tab, callback, oauth_request):
    page = tab.page
    log_in_for_consent(page, live_server, oauth_request)
    page.locator("input[name=request_id]").evaluate("input => { input.value = 'forged-request-id' }")

    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.get_by_role("button", name="Allow").click()
    assert posted.value.status == 400
    expect(page.get_by_role("alert")).to_contain_text(ANSWERED)
    assert callback.urls == []


def test_consent_form_without_cookies_gets_the_csrf_page(live_server, tab, callback, oauth_request):
    page = tab.page
    log_in_for_consent(page, live_server, oauth_request)
    tab.context.clear_cookies()  # e.g. the cookies were deleted while the page was open

    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.get_by_role("button", name="Allow").click()
    assert posted.value.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("This form has expired")
    expect(page.get_by_role("alert")).to_contain_text("nothing was done")
    assert callback.urls == []
    tab.screenshot("csrf-expired")


def test_log_in_from_the_landing_page_and_log_out(live_server, tab, callback, oauth_request):
    page = tab.page
    page.goto(live_server.url + "/")
    banner = page.get_by_role("banner")
    banner.get_by_role("link", name="Log in").click()
    wait_for_path(page, "/accounts/login/")
    fill_login(page, live_server.username, live_server.password)
    assert_at(page, "/")
    expect(banner).to_contain_text(f"Signed in as {live_server.username}")

    banner.get_by_role("button", name="Log out").click()  # a POST form, no JavaScript needed
    expect(banner.get_by_role("link", name="Log in")).to_be_visible()
    expect(banner).not_to_contain_text("Signed in as")
    assert "sessionid" not in {cookie["name"] for cookie in tab.context.cookies()}
    tab.screenshot("logged-out")

    # The session is really gone: an authorization request asks to log in again.
    page.goto(oauth_request.url)
    assert_at(page, "/accounts/login/")
    assert callback.urls == []


# ---------------------------------------------------------------------------
# Browser-side protections (Content-Security-Policy, framing), in the browser that enforces them
# ---------------------------------------------------------------------------


def test_a_refused_request_goes_back_to_the_client_before_any_login(live_server, tab, callback, oauth_request):
    """An error for a verified client goes to its redirect URI at once. After the login form's
    POST it could not: the login page's `form-action 'self'` would make the browser block the
    redirect off the site (the `tab` fixture fails the test on any CSP violation)."""
    params = {**query_of(oauth_request.url), "code_challenge_method": "plain"}
    tab.page.goto(f"{live_server.url}/authorize?{urlencode(params)}")
    tab.page.wait_for_url(callback.received)
    query = callback.query()
    assert query["error"] == "invalid_request" and "S256" in query["error_description"], query
    assert query["state"] == oauth_request.state


class FramingPage:
    """Another site's page that frames the given URLs, served from loopback (Chromium refuses
    a public page framing loopback on its own, which would hide what this server does)."""

    def __init__(self, urls: list[str]):
        body = (
            "<!doctype html><title>Framer</title>" + "".join(f'<iframe src="{url}"></iframe>' for url in urls)
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def test_pages_refuse_to_be_framed(live_server, open_tab):
    """Another origin frames the login and landing pages (clickjacking): Chromium blocks both
    by their response headers, citing `frame-ancestors 'none'`."""
    framed = [live_server.url + "/accounts/login/", live_server.url + "/"]
    framer = FramingPage(framed)
    try:
        tab = open_tab()
        blocked, console = {}, []
        tab.context.on("requestfailed", lambda request: blocked.__setitem__(request.url, request.failure))
        tab.page.on("console", lambda message: console.append(message.text))
        tab.page.goto(framer.url)  # waits for the load event, the frames' included
    finally:
        framer.close()
    assert blocked == {url: "net::ERR_BLOCKED_BY_RESPONSE" for url in framed}, blocked
    # Chromium names only the framed origin in the message.
    refusals = [
        text
        for text in console
        if f"Framing '{live_server.url}/' violates" in text and "frame-ancestors 'none'" in text
    ]
    assert len(refusals) == 2, console
    frames = tab.page.frames[1:]
    assert len(frames) == 2
    for frame in frames:
        assert frame.locator("#id_username").count() == 0 and frame.locator("#mcp-url").count() == 0, frame.url


def _create_staff_user(server) -> tuple[str, str]:
    """A superuser in the live server's own database (its DATABASE_URL), through manage.py."""
    username, password = "staff-" + secrets.token_hex(4), secrets.token_urlsafe(18)
    script = (
        "import os\nfrom django.contrib.auth import get_user_model\n"
        "get_user_model().objects.create_superuser(os.environ['STAFF_USERNAME'], '', os.environ['STAFF_PASSWORD'])\n"
    )
    env = {**server.env, "STAFF_USERNAME": username, "STAFF_PASSWORD": password}
    result = django_shell(script, env, timeout=60)
    assert result.returncode == 0, result.stderr
    return username, password


def test_admin_pages_work_under_the_content_security_policy(live_server, tab):
    """The admin's scripts and widgets (actions, filters, the permission picker) run from
    /static/ with no inline script or style the policy would block; the auth event trail
    shows the staff login."""
    username, password = _create_staff_user(live_server)
    page = tab.page
    page.goto(live_server.url + "/admin/login/")
    fill_login(page, username, password)
    assert_at(page, "/admin/")
    expect(page.get_by_role("link", name="Auth events")).to_be_visible()

    page.goto(live_server.url + "/admin/oauth_app/authevent/?kind__exact=login")
    rows = page.locator("#result_list tbody tr")
    expect(rows.filter(has_text=username)).to_have_count(1)
    expect(page.locator("#changelist-filter")).to_contain_text("login failed")  # the kind filter
    expect(page.get_by_role("link", name="Add auth event")).to_have_count(0)  # read-only
    tab.screenshot("admin-auth-events")

    page.goto(live_server.url + "/admin/auth/user/")
    page.get_by_role("link", name=username).click()
    # SelectFilter2.js turns the permissions list into the two-box picker: the admin's scripts ran.
    expect(page.locator("#id_user_permissions_from")).to_be_visible()
    tab.screenshot("admin-user-change")
