"""The MCP endpoints: HTTP in, JSON-RPC to a session, HTTP or SSE out.

``endpoint.py`` is the base of every endpoint (a plain ASGI app per request:
bounded body, disconnect watch, answers and streams); ``streamable_http.py``
serves ``/mcp``, handing stateless-era (2026-07-28) requests to
``stateless_http.py``; ``legacy_sse.py`` serves ``/sse`` and ``/messages``;
``sse.py`` frames Server-Sent Events. They parse and check bytes and headers
and move messages; the protocol itself is the engine's.

May import: ``cluster``, ``sessions``, ``engine`` (stateless requests have no
session in between), ``guards`` (only the challenge a ``tools/call`` without its
scope gets, which needs the body), ``principal``, ``protocol``. Never ``tools``
directly.
"""
