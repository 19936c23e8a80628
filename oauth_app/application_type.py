"""`application_type` at dynamic registration: OpenID Connect Dynamic Client Registration §2,
which MCP 2026-07-28 (SEP-837) asks clients to send.

A `web` client is a remote browser application: its redirect URIs are https on a real host.
Loopback (`http://127.0.0.1:PORT/...`, `localhost`) and private-use schemes (`cursor://`)
receive codes on the user's own machine, which only a `native` client does; a `web` client
that registers one is refused (`invalid_redirect_uri`). Any other value is refused
(`invalid_client_metadata`).

Absent, OIDC reads "web". Clients from before SEP-837 send none with loopback redirect URIs
(the MCP Inspector, older SDKs, the conformance suite), and reading that as "web" would refuse
them all; RFC 7591 §3.2.1 lets the server substitute a suitable value instead, so an absent
type is "web" when the redirect URIs allow it and "native" when they are a native app's.
The value decided is stored and echoed in the registration response.
"""

from urllib.parse import urlsplit

from django.http import JsonResponse

from oauth_app.errors import oauth_error
from oauth_app.models import Application
from oauth_app.origins import is_loopback_host

WEB = Application.ApplicationType.WEB
NATIVE = Application.ApplicationType.NATIVE


def is_native_redirect(uri: str) -> bool:
    """A redirect URI on the user's machine: loopback, or a private-use scheme. (Already
    validated by ``oauth_app.redirect_uris``.)"""
    parts = urlsplit(uri)
    if parts.scheme.lower() not in ("http", "https"):
        return True
    return is_loopback_host(parts.hostname)


def decide(data: dict) -> tuple[str, JsonResponse | None]:
    """``(application_type, None)`` for registration metadata whose redirect URIs passed the
    policy, or ``("", error response)``."""
    declared = data.get("application_type")
    native_redirects = [uri for uri in data["redirect_uris"] if is_native_redirect(uri)]
    if declared is None:  # absent, or an explicit null (RFC 7591 §2: omitted)
        return (NATIVE if native_redirects else WEB), None
    if declared not in (WEB, NATIVE):
        return "", oauth_error("invalid_client_metadata", 'application_type must be "web" or "native"')
    if declared == WEB and native_redirects:
        return "", oauth_error(
            "invalid_redirect_uri",
            f"redirect URI {native_redirects[0]!r} is for a native application (loopback or a private-use "
            'scheme); a "web" client must use https on a host that is not loopback. Register it with '
            'application_type "native".',
        )
    return declared, None
