"""The words of MCP over HTTP that every layer shares.

Method names, header names, media types and protocol versions
(``names.py``), JSON-RPC error codes (``errors.py``), the JSON-RPC codec
(``jsonrpc.py``) and the reading of an ASGI HTTP scope (``scope.py``):
each defined here once. Beside them, the one piece of plumbing every layer
shares: a worker's membership of a Channels group (``groups.py``), how what
one worker says reaches all (list changes, task signals, revoked tokens).

May import: the ``mcp_types`` package and the standard library (``groups.py``
also Channels and Django's settings); nothing else of ``mcp_app``.
"""
