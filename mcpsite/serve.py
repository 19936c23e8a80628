"""`python -m mcpsite.serve`: daphne's command line, with credentials kept out of its access log.

daphne writes every request's path *with its query string* to the access log. This
server refuses tokens in the query string (RFC 6750 §2.3; `mcp_app/guards/bearer.py`),
but a client that sends one anyway would still leave a live bearer token in the log,
and OAuth parameters such as `code` are as sensitive. So the access log written
here replaces the values of those parameters with `[redacted]`; everything else
(arguments, options, log format) is daphne's own.

    python -m mcpsite.serve -b 127.0.0.1 -p 8000 mcpsite.asgi:application
"""

from urllib.parse import parse_qsl, urlencode

from daphne.cli import CommandLineInterface
from daphne.server import Server

# Query parameters whose values are credentials, or can be traded for them.
SENSITIVE_PARAMETERS = frozenset(
    {"access_token", "refresh_token", "id_token", "code", "client_secret", "password", "token", "code_verifier"}
)
REDACTED = "[redacted]"


def redact_path(path: str) -> str:
    """``path`` with the values of sensitive query parameters replaced by ``[redacted]``."""
    base, separator, query = path.partition("?")
    if not separator:
        return path
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(name.lower() in SENSITIVE_PARAMETERS for name, _ in pairs):
        return path
    # safe="[]": keep the marker readable in the log line.
    kept = [(name, REDACTED if name.lower() in SENSITIVE_PARAMETERS else value) for name, value in pairs]
    return f"{base}?{urlencode(kept, safe='[]')}"


class _RedactingLogger:
    """An access-log callable (daphne's ``action_logger``) that redacts paths before logging."""

    def __init__(self, logger):
        self._logger = logger

    def __call__(self, protocol, action, details):
        if "path" in details:
            details = {**details, "path": redact_path(details["path"])}
        self._logger(protocol, action, details)


class RedactingServer(Server):
    def __init__(self, *args, action_logger=None, **kwargs):
        if action_logger is not None:
            action_logger = _RedactingLogger(action_logger)
        super().__init__(*args, action_logger=action_logger, **kwargs)


class ServeCommand(CommandLineInterface):
    server_class = RedactingServer


if __name__ == "__main__":
    ServeCommand.entrypoint()
