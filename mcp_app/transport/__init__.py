"""The MCP endpoints: HTTP in, JSON-RPC to a session, HTTP or SSE out.

``endpoint.py`` is the base of every endpoint (a plain ASGI app per request:
bounded body, disconnect watch, answers and streams); ``streamable_http.py``
serves ``/mcp``, ``legacy_sse.py`` serves ``/sse`` and ``/messages``;
``sse.py`` frames Server-Sent Events. They parse and check bytes and headers
and move messages; the protocol itself is the engine's.

May import: ``cluster``, ``sessions``, ``principal``, ``protocol``. Never
``engine`` or ``tools`` directly, nor ``guards`` (the guards wrap the
endpoints, in ``routing.py``).
"""
