"""Calls of unknown tools, or with bad arguments, are protocol errors.

MCP keeps tool errors (a result with ``isError: true``) for failures while a
tool runs, and answers an unknown tool or invalid arguments with a JSON-RPC
error. MCPServer reports both as tool errors, so ``require_valid_arguments``
puts a check in front of its ``tools/call`` handler: the arguments are checked
against the input schema the tool advertises, and a mismatch (or a name no
tool has) is JSON-RPC -32602, invalid params, naming the problems.

The check wraps the handler rather than being a middleware so that it runs
inside every middleware, whatever their order: the audit trail sees these
errors like any other.

It runs on every call, so it is made cheap for the schemas type hints give
(scalar properties, nothing else): a direct check says whether the arguments
are surely valid, and only when it cannot say so does jsonschema run, so the
problems it reports are jsonschema's, word for word. Each schema's check and
jsonschema validator are built once, and so is whether it asks for ``Mcp-Param-*``
headers (``declares_param_headers``), which a stateless-era call is checked against.
"""

from typing import Any, NamedTuple

import jsonschema
from mcp.server.context import HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import x_mcp_header_map
from mcp_types import CallToolRequestParams

from mcp_app.engine import sdk
from mcp_app.protocol.errors import INVALID_PARAMS
from mcp_app.protocol.names import TOOLS_CALL
from mcp_app.tools.numbers import is_finite_number

MAX_PROBLEMS = 10
PROBLEM_CHARS = 200  # per problem: a message must not echo a huge argument back
MAX_COMPILED_SCHEMAS = 1000  # one per tool; forgotten all at once past this
# Keywords that only describe; they never make an instance invalid.
_ANNOTATIONS = frozenset({"title", "description", "default", "examples"})

# A JSON number is finite (RFC 8259 has no NaN or Infinity) but the JSON-RPC
# parser accepts those tokens; they, and integers too large for a double, are
# not numbers here.
_ArgumentValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "number", lambda _checker, value: is_finite_number(value)
    ),
)


def require_valid_arguments(server: MCPServer) -> None:
    """Check every ``tools/call`` on ``server`` against the called tool's input schema first."""
    lowlevel = sdk.lowlevel_server(server)
    entry = lowlevel.get_request_handler(TOOLS_CALL)
    input_schema = lowlevel.get_tool_input_schema
    call_tool = entry.handler

    async def call_tool_with_valid_arguments(ctx: ServerRequestContext, params: CallToolRequestParams) -> HandlerResult:
        schema = input_schema(params.name)
        if schema is None:
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {params.name}")
        problems = argument_problems(schema, params.arguments or {})
        if problems:
            raise MCPError(INVALID_PARAMS, f"Invalid arguments for tool {params.name}: {'; '.join(problems)}")
        return await call_tool(ctx, params)

    lowlevel.add_request_handler(TOOLS_CALL, entry.params_type, call_tool_with_valid_arguments)


def argument_problems(schema: dict[str, Any], arguments: dict[str, Any]) -> list[str]:
    """What is wrong with ``arguments`` for a tool with input schema ``schema``, if anything."""
    compiled = _compiled(schema)
    if compiled.surely_valid is not None and compiled.surely_valid(arguments):
        return []
    errors = sorted(compiled.validator.iter_errors(arguments), key=lambda e: [str(p) for p in e.path])
    return [_describe(error)[:PROBLEM_CHARS] for error in errors[:MAX_PROBLEMS]]


# The same checks the validator's type checker makes, for the scalar types of a simple schema.
_SCALAR_CHECKS = {
    "number": is_finite_number,
    "string": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
}


class _Compiled(NamedTuple):
    """What is built once per schema."""

    schema: dict[str, Any]  # held, so that its id cannot be reused by another schema
    surely_valid: Any  # the direct check, or None when only jsonschema can tell
    validator: Any
    declares_param_headers: bool


_compiled_schemas: dict[int, _Compiled] = {}


def declares_param_headers(schema: dict[str, Any]) -> bool:
    """Whether ``schema`` annotates any property with ``x-mcp-header``: only then can a call's
    ``Mcp-Param-*`` headers disagree with its arguments (the SDK's check walks the whole schema
    twice to find out, on every call)."""
    return _compiled(schema).declares_param_headers


def _compiled(schema: dict[str, Any]) -> _Compiled:
    """What is built for ``schema``, on first use.

    Keyed by identity (a tool's schema is one object for its lifetime), holding the
    schema itself so that its id cannot be reused by another."""
    entry = _compiled_schemas.get(id(schema))
    if entry is None or entry.schema is not schema:
        if len(_compiled_schemas) >= MAX_COMPILED_SCHEMAS:
            _compiled_schemas.clear()
        declares_headers = bool(x_mcp_header_map(schema))
        entry = _Compiled(schema, _surely_valid_check(schema), _ArgumentValidator(schema), declares_headers)
        _compiled_schemas[id(schema)] = entry
    return entry


def _surely_valid_check(schema: dict[str, Any]):
    """For an object schema whose properties are all plain ``number``, ``string`` or
    ``boolean`` (and ``required``), a function telling whether arguments are valid
    without jsonschema; None for any other schema, which jsonschema always checks."""
    if schema.get("type") != "object" or set(schema) - _ANNOTATIONS - {"type", "properties", "required"}:
        return None
    properties, required = schema.get("properties", {}), schema.get("required", [])
    if not isinstance(properties, dict) or not isinstance(required, list):
        return None
    checks = {}
    for name, subschema in properties.items():
        if not isinstance(subschema, dict) or set(subschema) - _ANNOTATIONS - {"type"}:
            return None
        kind = subschema.get("type")
        check = _SCALAR_CHECKS.get(kind) if isinstance(kind, str) else None
        if check is None:
            return None
        checks[name] = check

    def surely_valid(arguments: Any) -> bool:
        return (
            isinstance(arguments, dict)
            and all(name in arguments for name in required)
            and all(check(arguments[name]) for name, check in checks.items() if name in arguments)
        )

    return surely_valid


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(part) for part in error.absolute_path) or "arguments"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{where}: expected {expected}, got {_json_type(error.instance)}"
    if error.validator == "required":
        return error.message  # "'b' is a required property"
    return f"{where}: {error.message}"


def _json_type(value: object) -> str:
    match value:
        case bool():
            return "boolean"
        case int() | float():
            return "number" if is_finite_number(value) else "a non-finite or out-of-range number"
        case str():
            return "string"
        case list():
            return "array"
        case dict():
            return "object"
        case None:
            return "null"
    return type(value).__name__
