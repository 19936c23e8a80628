"""Audit rows as ``mcp_app.engine.audit._record`` makes them, for tests that write through the
writer's own code (``audit._insert``) without serving calls: in-process, or from a script run
in a server's settings (``manage.py shell -c``). Every column has a plain default; a test names
only what it varies."""

from typing import Any

from django.utils import timezone


def audit_row(**fields: Any) -> dict[str, Any]:
    """One row: a successful ``add`` call, just now, by nobody in particular, with ``fields`` over it."""
    return {
        "created_at": timezone.now(),
        "user_id": None,
        "username": "",
        "client_id": "client",
        "session_id": "",
        "tool": "add",
        "arguments": "{}",
        "outcome": "ok",
        "error_code": None,
        "error_message": "",
        "duration_ms": 0.1,
        **fields,
    }
