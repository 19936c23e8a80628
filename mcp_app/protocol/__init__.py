"""The words of MCP over HTTP that every layer shares.

Method names, header names, media types and protocol versions
(``names.py``), JSON-RPC error codes (``errors.py``), the JSON-RPC codec
(``jsonrpc.py``) and the reading of an ASGI HTTP scope (``scope.py``):
each defined here once.

May import: the ``mcp_types`` package and the standard library; nothing
else of ``mcp_app``, nothing of Django or Channels.
"""
