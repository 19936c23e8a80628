"""Which redirect URIs a client may register (RFC 7591, RFC 8252, OAuth 2.1 §7.5).

Allowed: ``https`` URIs; ``http`` only on a loopback host (where any port
matches at authorization time, RFC 8252 §7.3); and a native app's private-use
scheme such as ``cursor://`` (RFC 8252 §7.1). Refused: schemes that run code
or read local files, fragments, credentials in the URI, malformed URIs, ports
that are no TCP port (1-65535).

Since a loopback redirect matches on any port, the port an /authorize request
names is the one part of its redirect URI that registration never checked:
``refuse_invalid_redirect_ports`` checks it there (applied in ``oauth_app/urls.py``).
"""

import functools
import re
from urllib.parse import urlsplit

from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

from oauth_app.origins import is_loopback_host

# Schemes that a browser would execute or that reach local resources.
FORBIDDEN_SCHEMES = frozenset(
    {"javascript", "data", "file", "vbscript", "blob", "about", "filesystem", "ftp", "ws", "wss"}
)
# RFC 3986 §3.1 scheme syntax.
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.\-]*$")
MAX_REDIRECT_URI_LENGTH = 2000
# TCP ports; 0 is no destination anyone listens on.
MIN_PORT, MAX_PORT = 1, 65535


class RedirectURIError(ValueError):
    """The redirect URI is not acceptable; the message says why, for the error body."""


def validate_redirect_uri(uri: object) -> None:
    if not isinstance(uri, str) or not uri:
        raise RedirectURIError("each redirect URI must be a non-empty string")
    if len(uri) > MAX_REDIRECT_URI_LENGTH:
        raise RedirectURIError(f"redirect URI longer than {MAX_REDIRECT_URI_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in uri):
        raise RedirectURIError(f"redirect URI {uri!r} contains whitespace or control characters")
    if "#" in uri:
        raise RedirectURIError(f"redirect URI {uri!r} must not contain a fragment")
    try:
        parts = urlsplit(uri)
    except ValueError:  # e.g. an unclosed "[" of an IPv6 host
        raise RedirectURIError(f"redirect URI {uri!r} is malformed") from None
    problem = port_problem(uri)
    if problem is not None:
        raise RedirectURIError(problem)
    scheme = parts.scheme.lower()
    if not scheme or not _SCHEME_RE.match(scheme):
        raise RedirectURIError(f"redirect URI {uri!r} must be an absolute URI with a scheme")
    if scheme in FORBIDDEN_SCHEMES:
        raise RedirectURIError(f"redirect URI scheme {scheme!r} is not allowed")
    if parts.username is not None or parts.password is not None:
        raise RedirectURIError(f"redirect URI {uri!r} must not contain credentials")
    if scheme == "https":
        if not parts.hostname:
            raise RedirectURIError(f"redirect URI {uri!r} has no host")
    elif scheme == "http":
        if not is_loopback_host(parts.hostname):
            raise RedirectURIError(
                f"redirect URI {uri!r} uses http on a non-loopback host; use https, or http on "
                "localhost, 127.0.0.1 or [::1]"
            )
    else:
        # Private-use scheme of a native app (RFC 8252 §7.1): reverse-DNS style or an app name.
        if parts.netloc == "" and not parts.path:
            raise RedirectURIError(f"redirect URI {uri!r} is malformed")


def port_problem(uri: str) -> str | None:
    """Why the port `uri` names is no TCP port, or None: also when it names none (the
    scheme's default), or cannot be split at all (malformed, which other checks say)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    try:
        port = parts.port
    except ValueError:  # past 65535, or anything but ASCII digits ("-1", "+80", "8 0")
        port = -1
    if port is None or MIN_PORT <= port <= MAX_PORT:
        return None
    return f"redirect URI {uri!r} has an invalid port: a port is a number from {MIN_PORT} to {MAX_PORT}"


def refuse_invalid_redirect_ports(view):
    """`view` (/authorize), answering a request whose redirect_uri names no TCP port with the
    error page, before anything else runs. DOT lets a loopback redirect through on any port
    without reading it, so the code would go to a URI that is none; on other redirects it
    compares the ports, and reading a bad one raises (a 500). Either way the URI cannot be
    trusted to carry an error back: the person is told instead (RFC 6749 §4.1.2.1)."""

    @functools.wraps(view)  # keeps csrf_exempt and the other marks Django reads off the view
    def checked_view(request, *args, **kwargs):
        for uri in request.GET.getlist("redirect_uri"):
            problem = port_problem(uri)
            if problem is not None:
                response = render(
                    request, "oauth/error.html", {"error": "invalid_request", "description": problem}, status=400
                )
                add_never_cache_headers(response)  # as the consent view's own answers
                return response
        return view(request, *args, **kwargs)

    return checked_view


def allowed_schemes(redirect_uris: list[str]) -> list[str]:
    """Schemes a client's own (validated) redirect URIs use."""
    return sorted({urlsplit(uri).scheme.lower() for uri in redirect_uris})
