"""What this server adds to DOT's Client ID Metadata Document support (``oauth2_provider.cimd``,
turned on and bounded by the ``MCP_CIMD_*`` settings).

Fetching, validating and storing the documents is DOT's. A document's `client_name` is
whatever its author typed; what this server has verified is that the document was served
over HTTPS, with a valid certificate, by the host in the client id. The consent page shows
that host as the client's identity (`verified_host`) and the name only as the name the
client gave itself.
"""

from urllib.parse import urlsplit


def verified_host(client_id: str) -> str:
    """The host (and port, unless 443) that served a client's metadata document, in ASCII:
    a look-alike Unicode name shows as its `xn--` form, as DNS and the certificate saw it."""
    parts = urlsplit(client_id)
    host = parts.hostname or ""
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass  # unreachable for a stored client: DOT resolved the same name through the same codec
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port and port != 443 else host
