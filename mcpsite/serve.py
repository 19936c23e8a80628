"""`python -m mcpsite.serve`: daphne's command line, with credentials kept out of its access log.

daphne writes every request's path *with its query string* to the access log. This
server refuses tokens in the query string (RFC 6750 §2.3; `mcp_app/guards/bearer.py`),
but a client that sends one anyway would still leave a live bearer token in the log,
and OAuth parameters such as `code` are as sensitive. So the access log written
here replaces the values of those parameters with `[redacted]`; everything else
(arguments, options, log format) is daphne's own.

    python -m mcpsite.serve -b 127.0.0.1 -p 8000 mcpsite.asgi:application
"""

import asyncio
import atexit
import functools
from urllib.parse import parse_qsl, urlencode

from daphne.access import AccessLogGenerator
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


def redacted(details: dict) -> dict:
    """An access-log entry's details (daphne's ``action_logger`` argument) with the path redacted."""
    if "path" not in details:
        return details
    return {**details, "path": redact_path(details["path"])}


class AccessLog(AccessLogGenerator):
    """daphne's access log (its format, its stream), with credentials redacted from paths.

    Its lines are written once per event-loop turn, not one ``write`` each: under load a turn
    finishes several requests, and a write per line (a system call, the stream being unbuffered
    as `PYTHONUNBUFFERED` or a pipe makes it) cost about 2% of a busy worker (py-spy,
    `bench/`). A line waits at most for the end of the turn that finished its request, and what
    is left at exit is written then. The timestamp is formatted once a second, not per line.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self._lines: list[str] = []
        self._second = None
        self._stamp = ""
        atexit.register(self.flush)

    def __call__(self, protocol, action, details):
        super().__call__(protocol, action, redacted(details))

    def write_entry(self, host, date, request, status=None, length=None, ident=None, user=None):
        second = date.replace(microsecond=0)
        if second != self._second:
            self._second, self._stamp = second, date.strftime("%d/%b/%Y:%H:%M:%S")
        line = f'{host} {ident or "-"} {user or "-"} [{self._stamp}] "{request}" {status or "-"} {length or "-"}\n'
        if not self._lines:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # not on a running loop: no turn to wait for
                self.stream.write(line)
                return
        self._lines.append(line)

    def flush(self) -> None:
        if self._lines:
            lines, self._lines = self._lines, []
            self.stream.write("".join(lines))


class RedactingServer(Server):
    def __init__(self, *args, action_logger=None, **kwargs):
        if isinstance(action_logger, AccessLogGenerator):
            action_logger = AccessLog(action_logger.stream)
        elif action_logger is not None:  # some other logger: redacted all the same
            action_logger = functools.partial(_log_redacted, action_logger)
        super().__init__(*args, action_logger=action_logger, **kwargs)


def _log_redacted(logger, protocol, action, details) -> None:
    logger(protocol, action, redacted(details))


class ServeCommand(CommandLineInterface):
    server_class = RedactingServer


if __name__ == "__main__":
    ServeCommand.entrypoint()
