"""A headless "browser" that logs in and answers the consent page over plain HTTP.

It does what a person does after an MCP client opens the authorization URL:
GET /authorize, get sent to the login form, log in, come back to the consent
form, click Allow (or Deny); when the person already allowed the client those
scopes, the server answers without the consent page (remembered consent). It
stops at the redirect to the client's redirect_uri and returns that Location
instead of following it, since that is what the client's callback receives.

Every step checks the response it expects (status, form present) and raises
BrowserError with the status and a body excerpt otherwise, so a failing e2e
test says which page went wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class BrowserError(AssertionError):
    pass


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)  # hidden/text inputs with a name
    buttons: dict[str, list[str]] = field(default_factory=dict)  # submit button name -> values


class _FormParser(HTMLParser):
    """Collects the <form>s of a page with their named inputs and submit buttons."""

    def __init__(self):
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = Form(action=attrs.get("action", ""), method=attrs.get("method", "get").lower())
            self.forms.append(self._current)
        elif self._current is not None and attrs.get("name"):
            if tag == "button" or (tag == "input" and attrs.get("type") == "submit"):
                self._current.buttons.setdefault(attrs["name"], []).append(attrs.get("value", ""))
            elif tag == "input":
                self._current.fields[attrs["name"]] = attrs.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def find_form(html: str, required_field: str) -> Form | None:
    """The first form on the page that has an input named `required_field`."""
    parser = _FormParser()
    parser.feed(html)
    return next((form for form in parser.forms if required_field in form.fields), None)


class _LoopbackIsSecure(DefaultCookiePolicy):
    """Send `Secure` cookies to http://127.0.0.1 and http://localhost.

    With DJANGO_DEBUG=0 the session and CSRF cookies are `Secure`. Browsers
    treat loopback origins as secure contexts and send them; Python's cookiejar
    does not, and the login would fail the CSRF check.
    """

    def return_ok_secure(self, cookie, request):
        return urlsplit(request.get_full_url()).hostname in LOOPBACK_HOSTS or super().return_ok_secure(cookie, request)


def _describe(response: httpx2.Response) -> str:
    body = response.text
    return f"{response.request.method} {response.request.url} -> {response.status_code}\n{body[:1500]}"


class HeadlessBrowser:
    """Logs in as `username` and decides on consent pages. Keeps its cookies (one session)
    between calls, so a second authorization skips the login like a real browser would."""

    def __init__(self, username: str, password: str, *, timeout: float = 15.0):
        self.username = username
        self.password = password
        # For assertions: the authorization URLs handed to authorize() and the Locations it returned.
        self.visited: list[str] = []
        self.redirects: list[str] = []
        self._http = httpx2.AsyncClient(
            follow_redirects=False,  # each hop is checked; the last one must not be followed
            cookies=CookieJar(_LoopbackIsSecure()),
            timeout=timeout,
            trust_env=False,  # loopback only: never through a proxy from the environment
        )

    async def __aenter__(self) -> HeadlessBrowser:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def authorize(self, authorization_url: str, decision: str = "allow") -> str:
        """Walk login + consent for `authorization_url`; return the final redirect's Location."""
        if decision not in ("allow", "deny"):
            raise ValueError(decision)
        self.visited.append(authorization_url)
        page = await self._http.get(authorization_url)
        if page.status_code == 302 and urlsplit(page.headers["location"]).path.startswith("/accounts/login/"):
            page = await self._log_in(urljoin(authorization_url, page.headers["location"]))
        if page.status_code == 302 and "code" in parse_qs(urlsplit(page.headers.get("location", "")).query):
            # This person already allowed the client these scopes: the server remembered it and
            # answered without the consent page (oauth_app/consent.py), as it does in a browser.
            if decision != "allow":
                raise BrowserError(f"authorize: consent was remembered, no page to {decision} on: {_describe(page)}")
            self.redirects.append(page.headers["location"])
            return page.headers["location"]
        if page.status_code != 200:
            raise BrowserError(f"authorize: expected the consent page (200) or a login redirect, got {_describe(page)}")
        consent = find_form(page.text, "request_id")
        if consent is None:
            raise BrowserError(f"authorize: no consent form with request_id on {_describe(page)}")
        if decision not in consent.buttons.get("decision", []):
            raise BrowserError(f"authorize: consent form has no {decision!r} button: {consent.buttons}")
        answer = await self._submit(page, consent, {"decision": decision})
        if answer.status_code != 302 or "location" not in answer.headers:
            raise BrowserError(f"consent: expected a 302 to the client's redirect_uri, got {_describe(answer)}")
        self.redirects.append(answer.headers["location"])
        return answer.headers["location"]

    async def _log_in(self, login_url: str) -> httpx2.Response:
        """Fill the login form; return the page the login redirects to (the consent page)."""
        page = await self._http.get(login_url)
        form = find_form(page.text, "csrfmiddlewaretoken") if page.status_code == 200 else None
        if form is None or "next" not in form.fields:
            raise BrowserError(f"login: expected a login form with csrf token and next, got {_describe(page)}")
        answer = await self._submit(page, form, {"username": self.username, "password": self.password})
        if answer.status_code != 302:
            # 200 here is the login page again: wrong credentials (the page says so).
            raise BrowserError(f"login: expected a 302 back to /authorize, got {_describe(answer)}")
        back = urljoin(str(answer.request.url), answer.headers["location"])
        if urlsplit(back).path != "/authorize":
            raise BrowserError(f"login: redirected to {back}, not back to /authorize")
        return await self._http.get(back)

    async def _submit(self, page: httpx2.Response, form: Form, values: dict[str, str]) -> httpx2.Response:
        if form.method != "post":
            raise BrowserError(f"form on {page.request.url} uses method {form.method!r}, expected post")
        target = urljoin(str(page.request.url), form.action or str(page.request.url))
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(str(page.request.url)))
        # Browsers send Origin on form POSTs; Django's CSRF check compares it with the Host.
        return await self._http.post(target, data={**form.fields, **values}, headers={"Origin": origin})
