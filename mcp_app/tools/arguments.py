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
"""

from typing import Any

import jsonschema
from mcp.server.context import HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolRequestParams

from mcp_app.tools.numbers import is_finite_number

MAX_PROBLEMS = 10
PROBLEM_CHARS = 200  # per problem: a message must not echo a huge argument back

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
    # Private, but it is how the SDK's own in-memory transport reaches the low-level server.
    lowlevel = server._lowlevel_server
    entry = lowlevel.get_request_handler("tools/call")
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

    lowlevel.add_request_handler("tools/call", entry.params_type, call_tool_with_valid_arguments)


def argument_problems(schema: dict[str, Any], arguments: dict[str, Any]) -> list[str]:
    """What is wrong with ``arguments`` for a tool with input schema ``schema``, if anything."""
    errors = sorted(_ArgumentValidator(schema).iter_errors(arguments), key=lambda e: [str(p) for p in e.path])
    return [_describe(error)[:PROBLEM_CHARS] for error in errors[:MAX_PROBLEMS]]


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
