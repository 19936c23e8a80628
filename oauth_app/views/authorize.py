"""GET/POST /authorize: the consent page.

DOT's stock view carries the whole OAuth request through the consent form in
hidden fields, so a user (or a page that can post the form) could widen scopes
or drop PKCE by editing them. Here the request validated on GET is kept in the
user's session under a random id; the form carries only that id, the decision
and the CSRF token. The POST takes the stored request (once), and oauthlib
validates it again before a code is issued.

Browsers apply the Content-Security-Policy `form-action` of the page that sent a
form to every redirect that follows the POST. The consent POST ends in a redirect
to the client, so the consent page's policy names the client's redirect origin;
and every error that goes back to the client is sent before the login form, whose
policy allows only this site.

A person who already allowed the client the scopes it asks for, and has not revoked it since,
gets the code without the page (``oauth_app.consent``, ``MCP_REMEMBER_CONSENT``): the request
passes every check first (login, PKCE S256, the registered redirect URI, the resource), and
oauthlib validates it again as it issues the code. When the person had to log in first, that
redirect follows the login form's POST, so the login page names the client's redirect origin
in its `form-action` too (``login_form_action_source``, used by ``views/account.py``).
"""

import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.models import get_application_model
from oauth2_provider.scopes import get_scopes_backend
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import AuthorizationView
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error

from oauth_app import consent, events
from oauth_app.cimd import verified_host
from oauth_app.models import AuthEvent
from oauth_app.origins import request_origin, same_origin

PENDING_SESSION_KEY = "oauth_pending_authorizations"
# A user with several consent tabs open keeps that many pending requests; older ones are dropped.
MAX_PENDING = 8
_CARRIED = ("client_id", "redirect_uri", "response_type", "state", "code_challenge", "code_challenge_method")
# What a CSP host-source may spell: an ASCII host name or a bracketed IPv6 address; a scheme per RFC 3986.
_CSP_HOST = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\]")
_CSP_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


def form_action_source(redirect_uri: str) -> str | None:
    """The CSP source that lets the consent form's redirect reach `redirect_uri`: its origin
    (http/https, port included: a loopback client listens on a port of its own), else its
    scheme (a native app's `cursor:`). None if the URI spells neither safely: an http(s)
    host that a CSP host-source cannot name (`app_x.example`: CSP hosts have no `_`) is
    never widened to its scheme, which would let the form post to any https site; the
    browser then blocks that client's redirect, which fails closed."""
    parts = urlsplit(redirect_uri)
    scheme = parts.scheme.lower()
    if not _CSP_SCHEME.fullmatch(scheme):
        return None
    if scheme in ("http", "https"):
        try:
            host = (parts.hostname or "").encode("idna").decode("ascii")
            port = parts.port
        except (UnicodeError, ValueError):
            host, port = "", None
        if ":" in host:
            host = f"[{host}]"
        if _CSP_HOST.fullmatch(host):
            return f"{scheme}://{host}" + (f":{port}" if port else "")
        return None
    return f"{scheme}:"


def login_form_action_source(next_url: str) -> str | None:
    """The CSP source the login page needs when the person logs in on their way to `next_url`:
    an /authorize request that a remembered consent may answer with a redirect straight to the
    client. Only for a known client and a redirect URI registered for it (else the consent page,
    or an error page, follows the login, both on this site); None otherwise."""
    if not consent.remembering() or not next_url:
        return None
    parts = urlsplit(next_url)
    if parts.path != reverse("oauth2_provider:authorize"):
        return None
    query = parse_qs(parts.query)
    client_ids, redirect_uris = query.get("client_id", []), query.get("redirect_uri", [])
    if len(client_ids) != 1 or len(redirect_uris) > 1:
        return None
    # Only clients already stored: a first-seen metadata document is not fetched for a login page.
    application = get_application_model().objects.filter(client_id=client_ids[0]).first()
    if application is None or not application.is_usable(None):
        return None
    if redirect_uris:
        redirect_uri = redirect_uris[0]
    else:
        registered = application.redirect_uris.split()
        if len(registered) != 1:
            return None
        redirect_uri = registered[0]  # what oauthlib uses when the request names none
    if not application.redirect_uri_allowed(redirect_uri):
        return None
    return form_action_source(redirect_uri)


@method_decorator(never_cache, name="dispatch")
class ConsentView(AuthorizationView):
    template_name = "oauth/consent.html"

    def get(self, request, *args, **kwargs):
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        application = get_application_model().objects.get(client_id=credentials["client_id"])

        if "login" in request.GET.get("prompt", "").split():
            return self.handle_prompt_login()

        problem = self._refused(credentials, application)
        if problem is not None:
            return problem
        origin = request_origin(request)
        resources = request.GET.getlist("resource")

        pending = {key: credentials.get(key) for key in _CARRIED}
        pending["scopes"] = list(scopes)
        pending["resource"] = resources or [origin]
        # "prompt=consent" (OpenID Connect) asks for the page whatever was allowed before.
        asks_for_page = "consent" in request.GET.get("prompt", "").split()
        if consent.remembering() and not asks_for_page and consent.covers(request.user, application, scopes):
            return self._answer(pending, application, allow=True, remembered=True)
        request_id = self._remember(pending)

        all_scopes = get_scopes_backend().get_all_scopes()
        response = render(
            request,
            self.template_name,
            {
                "application": application,
                # A client known from its metadata document is named by the host that served it.
                "verified_host": verified_host(application.client_id) if application.registered_by_document else "",
                "request_id": request_id,
                "scopes": [(scope, all_scopes.get(scope, scope)) for scope in scopes],
                "redirect_host": urlsplit(credentials["redirect_uri"]).netloc or credentials["redirect_uri"],
                "redirect_scheme": urlsplit(credentials["redirect_uri"]).scheme,
                "remembering": consent.remembering(),
            },
        )
        source = form_action_source(credentials["redirect_uri"])
        if source is not None:
            # What django-csp's @csp_update sets; per response, as each client redirects elsewhere.
            response._csp_update = {"form-action": [source]}
        return response

    def _refused(self, credentials, application):
        """The error redirect for a request this server refuses although oauthlib accepts it, or None."""
        # oauthlib takes a challenge without a method as "plain"; OAuth 2.1 here means S256 only,
        # refused before the user is asked rather than after.
        if credentials.get("code_challenge_method") != "S256":
            return self._redirect_error(
                credentials, application, "invalid_request", 'code_challenge_method must be "S256".'
            )
        origin = request_origin(self.request)
        foreign = [resource for resource in self.request.GET.getlist("resource") if not same_origin(resource, origin)]
        if foreign:
            return self._redirect_error(
                credentials,
                application,
                "invalid_target",
                f"The resource {foreign[0]!r} is not served here; this server is {origin}.",
            )
        return None

    def post(self, request, *args, **kwargs):
        pending = self._take(request.POST.get("request_id", ""))
        application = None
        if pending is not None:
            application = get_application_model().objects.filter(client_id=pending["client_id"]).first()
        if application is None:
            return render(
                request,
                "oauth/error.html",
                {
                    "error": "invalid_request",
                    "description": "This authorization request has expired or was already answered. "
                    "Start again from your application.",
                },
                status=400,
            )
        return self._answer(pending, application, allow=request.POST.get("decision") == "allow")

    def _answer(self, pending: dict, application, *, allow: bool, remembered: bool = False):
        """Answer a validated request: a code (Allow, or a consent remembered) or access_denied."""
        request = self.request
        credentials = {key: pending[key] for key in _CARRIED if pending.get(key)}
        credentials["resource"] = pending["resource"]
        scope = " ".join(pending["scopes"])
        if not allow:
            # A Deny is never remembered, and takes back what was allowed before: the next
            # request of this client shows the page again.
            consent.forget(request.user, application)
            events.record(
                AuthEvent.Kind.CONSENT_DENIED,
                request=request,
                user=request.user,
                client_id=application.client_id,
                detail=f"scope={scope}",
            )
        try:
            uri, _headers, _body, _status = self.create_authorization_response(
                request=request, scopes=scope, credentials=credentials, allow=allow
            )
        except OAuthToolkitError as error:
            return self.error_response(error, application)
        if not remembered:
            # Recorded whether or not MCP_REMEMBER_CONSENT is on: the Connected apps page shows it.
            consent.remember(request.user, application, pending["scopes"])
        events.record(
            AuthEvent.Kind.CONSENT_GRANTED,
            request=request,
            user=request.user,
            client_id=application.client_id,
            detail=f"remembered; scope={scope}" if remembered else f"scope={scope}",
        )
        return self.redirect(uri, application)

    def redirect(self, redirect_to, application):
        response = super().redirect(redirect_to, application)
        # The Location carries the code (or the error) for the client: no Referer from here on.
        response["Referrer-Policy"] = "no-referrer"
        return response

    def _redirect_error(self, credentials, application, error, description):
        """An error for a request whose client and redirect URI are verified: back to the client."""
        oauth_error = CustomOAuth2Error(error=error, description=description, state=credentials.get("state"))
        return self.error_response(
            OAuthToolkitError(error=oauth_error, redirect_uri=credentials["redirect_uri"]), application
        )

    def handle_no_permission(self):
        """Check the request before asking anyone to log in: a broken request
        (unknown client, unregistered redirect) gets its error page at once."""
        if self.request.method == "GET":
            try:
                _scopes, credentials = self.validate_authorization_request(self.request)
            except OAuthToolkitError as error:
                return self.error_response(error, application=None)
            # Refused requests go back to the client now: after the login form's POST the
            # browser would block a redirect off this site (CSP form-action 'self').
            application = get_application_model().objects.get(client_id=credentials["client_id"])
            problem = self._refused(credentials, application)
            if problem is not None:
                return problem
        return super().handle_no_permission()

    def error_response(self, error, application, **kwargs):
        redirect, response = OAuthLibMixin.error_response(self, error, **kwargs)
        if redirect and error.oauthlib_error.redirect_uri:
            # RFC 9207 §2: `iss` goes on error responses too (DOT adds it only on success).
            issuer = oauth2_settings.oauth2_authorization_server_issuer(self.request)
            return self.redirect(f"{response['url']}&{urlencode({'iss': issuer})}", application)
        # Unknown client, unregistered redirect URI and the like: never redirect
        # to an address we could not verify; tell the person instead.
        oauth_error = response["error"]
        return render(
            self.request,
            "oauth/error.html",
            {"error": oauth_error.error, "description": oauth_error.description},
            status=400,
        )

    def _remember(self, pending: dict) -> str:
        store = dict(self.request.session.get(PENDING_SESSION_KEY, {}))
        while len(store) >= MAX_PENDING:
            store.pop(next(iter(store)))
        request_id = secrets.token_urlsafe(24)
        store[request_id] = pending
        self.request.session[PENDING_SESSION_KEY] = store
        return request_id

    def _take(self, request_id: str) -> dict | None:
        store = dict(self.request.session.get(PENDING_SESSION_KEY, {}))
        pending = store.pop(request_id, None)
        self.request.session[PENDING_SESSION_KEY] = store
        return pending
