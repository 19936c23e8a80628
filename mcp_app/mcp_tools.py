"""This app's own tools, found by the registry like any app's (``mcp_app/tools/registry.py``):
the arithmetic tools, the calculator and ``whoami``. Importing their modules registers them."""

from mcp_app.tools import arithmetic, calculator, identity

__all__ = ["arithmetic", "calculator", "identity"]
