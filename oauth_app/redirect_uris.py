"""Which redirect URIs a client may register (RFC 7591, RFC 8252, OAuth 2.1 §7.5).

Allowed: ``https`` URIs; ``http`` only on a loopback host (where any port
matches at authorization time, RFC 8252 §7.3); and a native app's private-use
scheme such as ``cursor://`` (RFC 8252 §7.1). Refused: schemes that run code
or read local files, fragments, credentials in the URI, malformed URIs.
"""

import re
from urllib.parse import urlsplit

from oauth_app.origins import is_loopback_host

# Schemes that a browser would execute or that reach local resources.
FORBIDDEN_SCHEMES = frozenset(
    {"javascript", "data", "file", "vbscript", "blob", "about", "filesystem", "ftp", "ws", "wss"}
)
# RFC 3986 §3.1 scheme syntax.
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.\-]*$")
MAX_REDIRECT_URI_LENGTH = 2000


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
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise RedirectURIError(f"redirect URI {uri!r} is malformed") from None
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


def allowed_schemes(redirect_uris: list[str]) -> list[str]:
    """Schemes a client's own (validated) redirect URIs use."""
    return sorted({urlsplit(uri).scheme.lower() for uri in redirect_uris})
