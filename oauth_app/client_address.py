"""The client's address, as this site trusts it.

``REMOTE_ADDR``, which ``mcpsite/proxy_headers.py`` has already replaced with
the real client's address when the request came through a trusted proxy. One
reader for every user: the per-address rate limits, django-axes
(``AXES_CLIENT_IP_CALLABLE``), the auth event trail and registered clients.
"""

import ipaddress


def client_address(request) -> str | None:
    """The client's IP address of a Django request, or of an oauthlib request (whose
    headers are a copy of Django's META, ``oauth_app.backends``); None when there is
    none, or it is not an IP address (a Unix socket)."""
    if request is None:
        return None
    meta = getattr(request, "META", None)
    if meta is None:
        meta = getattr(request, "headers", None) or {}
    try:
        return str(ipaddress.ip_address(meta.get("REMOTE_ADDR") or ""))
    except ValueError:
        return None
