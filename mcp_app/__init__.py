"""The MCP resource server: the endpoints /mcp, /sse and /messages, down to the tools.

A request passes the layers in this order, each a sub-package that says in its
docstring what it does and what it may import (tests/site/test_layers.py holds
the rules; docs/architecture.md draws them):

    routing.py → guards/ → transport/ → cluster/ → sessions/ → engine/ → tools/

``protocol/`` (names, error codes, the JSON-RPC codec, ASGI scope reading) and
``principal.py`` (who is calling) serve every layer; ``models.py`` and
``admin.py`` hold the tool-call audit trail.
"""
