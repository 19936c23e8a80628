"""The OAuth scopes this server grants: its own (``MCP_SCOPE``, every token has it) and those
that tools declare (``notes:read``, ``notes:write``...), each with the words the consent page
shows for it.

DOT asks ``ToolScopes`` (``SCOPES_BACKEND_CLASS``) which scopes exist; so the RFC 8414
metadata's ``scopes_supported``, the scopes a client may request and the consent page's
descriptions all follow what has been declared. Declarations come from the MCP side at
start-up, through ``oauth_app.resource_server.declare_scope``.
"""

import re

from django.conf import settings
from oauth2_provider.scopes import BaseScopes

# RFC 6749 §3.3 scope-token: printable ASCII but space, double quote and backslash.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
MAX_SCOPE_CHARS = 64

_declared: dict[str, str] = {}


def declare_scope(name: str, description: str) -> None:
    """Make ``name`` a scope clients may request, described to people as ``description``."""
    if not _SCOPE_TOKEN.fullmatch(name) or len(name) > MAX_SCOPE_CHARS:
        raise ValueError(
            f"{name!r} is not a scope token (RFC 6749 §3.3: printable ASCII, no space, quote or backslash)"
        )
    if not description.strip():
        raise ValueError(f"scope {name!r} needs a description for the consent page")
    if name == settings.MCP_SCOPE or _declared.get(name, description) != description:
        raise ValueError(f"scope {name!r} is declared twice with different descriptions")
    _declared[name] = description


def all_scopes() -> dict[str, str]:
    """Every scope, with its description: the server's own first."""
    own = settings.MCP_SCOPE
    return {own: settings.OAUTH2_PROVIDER["SCOPES"][own], **_declared}


class ToolScopes(BaseScopes):
    """DOT's scopes backend: the server's own scope and the declared ones; tokens get the own by default."""

    def get_all_scopes(self):
        return all_scopes()

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        return list(all_scopes())

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        return [settings.MCP_SCOPE]
