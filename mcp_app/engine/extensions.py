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
from mcp_app.engine.tasks.extension import TasksExtension


@dataclass(frozen=True)
class Features:
    """What the engine offers an extension beyond ``MCPServer`` itself."""

    completions: Completions  # add completers for prompt and resource-template arguments
    tasks: TasksExtension  # let tools run as tasks (tasks.support(name, mode))


def load_extensions(paths) -> list:
    """Import each extension (so the tools it declares with ``@mcp_tool`` are registered before the
    engine offers the registry); ImproperlyConfigured names one that cannot be used."""
    modules = []
    for path in paths:
        try:
            module = importlib.import_module(path)
        except ImportError as exc:
            raise ImproperlyConfigured(f"MCP_EXTENSIONS names {path!r}, which cannot be imported: {exc}") from exc
        if not callable(getattr(module, "install", None)):
            raise ImproperlyConfigured(f"MCP_EXTENSIONS names {path!r}, which has no install(server, features)")
        modules.append(module)
    return modules


def install_extensions(server: MCPServer, features: Features, modules) -> None:
    for module in modules:
        module.install(server, features)
