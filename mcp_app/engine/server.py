"""The protocol engine: one ``mcp`` SDK server per process, with this project's
tools, the protocol features ``MCPServer`` leaves to its user, the audit and
limits middleware, and the extensions that settings name. Sessions drive its
low-level server."""

from functools import cache
from weakref import WeakKeyDictionary

from django.conf import settings
from mcp.server.caching import CacheHint
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.mcpserver import MCPServer
from mcp.server.models import InitializationOptions

from mcp_app.engine import sdk
from mcp_app.engine.access import install_access
from mcp_app.engine.arguments import require_valid_arguments
from mcp_app.engine.audit import install_audit
from mcp_app.engine.completions import install_completions
from mcp_app.engine.connected import session_lifespan, track_sessions
from mcp_app.engine.echo import install_echo_limit
from mcp_app.engine.extensions import Features, install_extensions, load_extensions
from mcp_app.engine.fanout import bus
from mcp_app.engine.limits import install_limits
from mcp_app.engine.listen import install_detached_listen
from mcp_app.engine.logging_level import install_logging_level
from mcp_app.engine.request_state import request_state_security
from mcp_app.engine.subscriptions import install_subscriptions
from mcp_app.engine.tasks.extension import TasksExtension
from mcp_app.tools import register_tools
from mcp_app.tools.registry import registered

SERVER_NAME = "django-mcp"
SERVER_VERSION = "2026.12"  # what serverInfo says; changes with the protocol surface (CHANGELOG.md)
INSTRUCTIONS = (
    "Math tools (add, subtract, multiply, divide, power, sqrt, calculate), whoami, "
    "which tells who you are signed in as, and countdown, a long call that runs as a task."
)
# Cache hints of the stateless era's list results (and discover). A list the same for everyone
# may be shared ("public"); one that depends on who asks must say "private". A minute keeps
# clients from re-listing on every call while list-changed notifications (subscriptions/listen)
# tell them about changes at once.
LIST_TTL_MS = 60_000
CACHE_HINTS = {
    "server/discover": CacheHint(ttl_ms=LIST_TTL_MS, scope="public"),
    # Who may call which tool depends on the person (engine/access.py): their list is theirs.
    "tools/list": CacheHint(ttl_ms=LIST_TTL_MS, scope="private"),
    "prompts/list": CacheHint(ttl_ms=LIST_TTL_MS, scope="public"),
    "resources/list": CacheHint(ttl_ms=LIST_TTL_MS, scope="public"),
    "resources/templates/list": CacheHint(ttl_ms=LIST_TTL_MS, scope="public"),
    # A resource's content may change at any time; subscribers are told when.
    "resources/read": CacheHint(ttl_ms=0, scope="private"),
}


_tasks_of: WeakKeyDictionary[MCPServer, TasksExtension] = WeakKeyDictionary()


def build_server(extensions: list[str] | tuple[str, ...] = ()) -> MCPServer:
    """A new engine with this project's tools and features, and the ``extensions`` (import paths) installed."""
    # The lifespan is entered once per session: its value is that session's state.
    tasks = TasksExtension()  # tool calls that run on as tasks (engine/tasks/)
    server = MCPServer(
        name=SERVER_NAME,
        version=SERVER_VERSION,
        instructions=INSTRUCTIONS,
        lifespan=session_lifespan,
        request_state_security=request_state_security(),
        cache_hints=CACHE_HINTS,
        subscriptions=bus,  # subscriptions/listen, fed from every worker
        extensions=[tasks],
    )
    if not settings.MCP_OPENTELEMETRY:
        sdk.drop_opentelemetry(server)
    extension_modules = load_extensions(extensions)  # first: their @mcp_tool declarations join the registry
    register_tools(server)
    for spec in registered():
        if spec.task is not None:
            tasks.support(spec.name, spec.task)
    track_sessions(server)
    install_logging_level(server)
    install_subscriptions(server)
    install_detached_listen(server, bus)  # a listen stream holds no engine task while it waits
    features = Features(completions=install_completions(server), tasks=tasks)
    install_extensions(server, features, extension_modules)
    # After every tool is added: unknown tools and bad arguments are answered as invalid params.
    require_valid_arguments(server)
    install_access(server)  # outermost: a tool the caller may not use is unknown to them
    install_echo_limit(server)  # the first middleware of ours: every error below it is cut
    install_audit(server)
    install_limits(server)  # inside the audit: refused and timed-out calls are recorded
    _tasks_of[server] = tasks
    return server


def tasks_of(server: MCPServer) -> TasksExtension:
    """The tasks extension of an engine ``build_server`` made: ``tasks_of(server).support(tool, mode)``."""
    return _tasks_of[server]


@cache
def get_mcp_server() -> MCPServer:
    """The engine of this process, with the extensions of ``MCP_EXTENSIONS``."""
    return build_server(tuple(settings.MCP_EXTENSIONS))


def get_server() -> Server:
    return sdk.lowlevel_server(get_mcp_server())


def initialization_options_for(server: Server) -> InitializationOptions:
    """What ``initialize`` answers with; ``listChanged`` because ``list_changed`` announces changes."""
    return server.create_initialization_options(
        NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
    )


@cache
def initialization_options() -> InitializationOptions:
    return initialization_options_for(get_server())
