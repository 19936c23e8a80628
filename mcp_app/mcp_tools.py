"""This app's own tools, found by the registry like any app's (``mcp_app/tools/registry.py``):
the arithmetic tools, the calculator, ``whoami`` and ``countdown`` (a long call that runs as
a task). Importing their modules registers them."""

from mcp_app.tools import arithmetic, calculator, identity, long_running

__all__ = ["arithmetic", "calculator", "identity", "long_running"]
