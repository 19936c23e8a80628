"""Engine extensions: modules, named in settings, that add tools, resources or prompts.

``MCP_EXTENSIONS`` lists import paths; each module has
``install(server: MCPServer, features: Features)`` and is installed once, when
the engine is built, before the argument check, the audit and the limits, so
what it adds is treated like the project's own tools. The test suite loads the
official conformance suite's fixtures this way (``tests/support/conformance_fixtures/``);
nothing is loaded by default.
"""

import importlib
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from mcp.server.mcpserver import MCPServer

from mcp_app.engine.completions import Completions


@dataclass(frozen=True)
class Features:
    """What the engine offers an extension beyond ``MCPServer`` itself."""

    completions: Completions  # add completers for prompt and resource-template arguments


def install_extensions(server: MCPServer, features: Features, paths) -> None:
    for path in paths:
        try:
            module = importlib.import_module(path)
        except ImportError as exc:
            raise ImproperlyConfigured(f"MCP_EXTENSIONS names {path!r}, which cannot be imported: {exc}") from exc
        install = getattr(module, "install", None)
        if not callable(install):
            raise ImproperlyConfigured(f"MCP_EXTENSIONS names {path!r}, which has no install(server, features)")
        install(server, features)
