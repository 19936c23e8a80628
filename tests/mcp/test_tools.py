"""The tools, called through an in-process MCP connection (``tests.support.engine_client``):
their schemas and annotations, results, tool errors, the calculator's limits, and
JSON-RPC invalid-params errors for unknown tools and bad arguments."""

import json
import math

import anyio
import pytest
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp_types import INVALID_PARAMS, jsonrpc_message_adapter

from mcp_app.engine.arguments import argument_problems, require_valid_arguments
from mcp_app.tools import register_tools
from mcp_app.tools.expression import MAX_DEPTH, MAX_EXPRESSION_CHARS, MAX_NODES
from tests.support.engine_client import connect, request_info, tagged_streams

pytestmark = pytest.mark.anyio

ARITHMETIC = {"add", "subtract", "multiply", "divide", "power", "sqrt"}
ALL_TOOLS = ARITHMETIC | {"calculate", "whoami"}
# Every refusal must come back at once: the evaluator never computes what it refuses.
PROMPT_SECONDS = 2


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def server():
    server = MCPServer("tools-under-test")
    register_tools(server)
    require_valid_arguments(server)  # as the engine does: unknown tools and bad arguments are -32602
    return server


@pytest.fixture
async def client(server):
    async with connect(server, request_info()) as client:
        yield client


async def call(client, name, arguments):
    """The result of a tool call that the server answered with a result (not a JSON-RPC error)."""
    with anyio.fail_after(PROMPT_SECONDS):
        return await client.call_tool(name, arguments)


def tool_error(result) -> str:
    assert result.is_error is True
    assert result.structured_content is None
    return result.content[0].text


def value(result) -> float:
    assert result.is_error is False, result.content
    assert set(result.structured_content) == {"result"}
    assert float(result.content[0].text) == result.structured_content["result"]  # readable text: the number
    return result.structured_content["result"]


# -- listing: schemas from type hints, output schemas, annotations -----------------------------
async def test_every_tool_is_listed_with_description_title_and_annotations(client):
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) >= ALL_TOOLS  # this app's own; other apps' (notes) have their own tests
    for tool in (tools[name] for name in ALL_TOOLS):
        assert tool.description and not tool.description.startswith(" ")
        assert tool.title
        assert tool.annotations.read_only_hint is True
        assert tool.annotations.idempotent_hint is True
        assert tool.annotations.open_world_hint is False
        assert tool.annotations.destructive_hint is None  # meaningless for read-only tools
        assert tool.output_schema and tool.output_schema["type"] == "object"


async def test_input_schemas_come_from_the_type_hints(client):
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    add = tools["add"].input_schema
    assert add["required"] == ["a", "b"]
    assert {name: prop["type"] for name, prop in add["properties"].items()} == {"a": "number", "b": "number"}
    assert tools["power"].input_schema["required"] == ["base", "exponent"]
    assert tools["sqrt"].input_schema["properties"]["x"]["type"] == "number"
    calculate = tools["calculate"].input_schema
    assert calculate["required"] == ["expression"]
    assert calculate["properties"]["expression"]["type"] == "string"
    assert str(MAX_EXPRESSION_CHARS) in calculate["properties"]["expression"]["description"]
    # The Context parameter is the SDK's to fill, not the caller's.
    assert tools["whoami"].input_schema["properties"] == {}


async def test_numeric_tools_declare_a_result_number(client):
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in ARITHMETIC | {"calculate"}:
        schema = tools[name].output_schema
        assert schema["required"] == ["result"]
        assert schema["properties"]["result"]["type"] == "number"
        assert schema["properties"]["result"]["description"]


async def test_whoami_declares_its_identity_shape(client):
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    schema = tools["whoami"].output_schema
    assert schema["required"] == ["user", "client", "scopes"]
    assert set(schema["$defs"]["User"]["properties"]) == {"id", "username"}
    assert set(schema["$defs"]["OAuthClient"]["properties"]) == {"client_id", "name"}


# -- arithmetic ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("add", {"a": 2, "b": 3}, 5.0),
        ("add", {"a": 0.1, "b": 0.2}, 0.1 + 0.2),
        ("subtract", {"a": 2, "b": 3.5}, -1.5),
        ("multiply", {"a": -4, "b": 2.5}, -10.0),
        ("divide", {"a": 7, "b": 2}, 3.5),
        ("power", {"base": 2, "exponent": 10}, 1024.0),
        ("power", {"base": -2, "exponent": 3}, -8.0),
        ("power", {"base": 4, "exponent": 0.5}, 2.0),
        ("power", {"base": 10, "exponent": -400}, 0.0),  # underflows to zero: small, not astronomically large
        ("sqrt", {"x": 16}, 4.0),
        ("sqrt", {"x": 0}, 0.0),
    ],
)
async def test_arithmetic(client, name, arguments, expected):
    assert value(await call(client, name, arguments)) == expected


async def test_division_by_zero_is_a_tool_error(client):
    assert tool_error(await call(client, "divide", {"a": 1, "b": 0})) == "Error executing tool divide: division by zero"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"base": 9, "exponent": 387420489}, "9 ** 387420489 is too large: the result would be about 10^369,693,100"),
        ({"base": 10, "exponent": 309}, "10 ** 309 is too large"),
        ({"base": 2, "exponent": 1024}, "2 ** 1024 is too large"),  # within rounding of the estimate
        ({"base": 0.5, "exponent": -2000}, "is too large"),
        ({"base": -8, "exponent": 1 / 3}, "not a real number"),
        ({"base": 0, "exponent": -1}, "zero cannot be raised to a negative power"),
    ],
)
async def test_power_refuses_what_a_double_cannot_hold(client, arguments, message):
    assert message in tool_error(await call(client, "power", arguments))


async def test_results_beyond_a_double_are_tool_errors(client):
    assert "too large" in tool_error(await call(client, "multiply", {"a": 1e308, "b": 10}))
    assert "too large" in tool_error(await call(client, "add", {"a": 1.7e308, "b": 1.7e308}))


async def test_square_root_of_a_negative_is_a_tool_error(client):
    assert "not a real number" in tool_error(await call(client, "sqrt", {"x": -1}))


# -- calculator ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("2 ** 3 ** 2", 512.0),  # right-associative, as in Python
        ("-2 ** 2", -4.0),
        ("+3 - -3", 6.0),
        ("7 / 2", 3.5),
        ("7 // 2", 3.0),
        ("-7 % 3", 2.0),
        ("2 ** -1", 0.5),
        ("1_000 + 0x10 + 1e3", 2016.0),
        ("sqrt(16) + abs(-2)", 6.0),
        ("round(2.567, 2)", 2.57),
        ("round(1234, -2)", 1200.0),
        ("min(3, 1, 2) + max(3, 1, 2)", 4.0),
        ("pi", math.pi),
        ("e ** 2", math.e**2),
        ("2 ** 1023", 2.0**1023),
        ("  ((((1))))  ", 1.0),
    ],
)
async def test_calculate(client, expression, expected):
    assert value(await call(client, "calculate", {"expression": expression})) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        # Size: refused from an estimate, never computed.
        ("9**9**9**9", "9 ** 387420489 is too large"),
        ("10 ** 10 ** 10", "is too large"),
        ("2 ** 1024", "is too large"),
        ("1e308 * 10", "too large"),
        ("9" * 400, "a number in the expression is too large"),
        ("1e999", "a number in the expression is too large"),
        # Length, node count and depth.
        ("1+" * 500 + "1", f"1001 characters, the limit is {MAX_EXPRESSION_CHARS}"),
        ("min(" + ",".join(["--1"] * 249) + ")", f"more than {MAX_NODES} numbers and operations"),
        ("-" * 300 + "1", f"nested too deeply: more than {MAX_DEPTH} levels"),
        ("-(" * 150 + "1" + ")" * 150, f"nested too deeply: more than {MAX_DEPTH} levels"),
        ("(" * 300 + "1" + ")" * 300, "too many nested parentheses"),
        # Nothing but arithmetic: no names, attributes, other calls or other syntax.
        ("__import__('os')", "only these functions can be called"),
        ("__import__('os').system('true')", "only these functions can be called"),
        ("().__class__", "attribute access is not allowed"),
        ("(1).__class__.__bases__", "attribute access is not allowed"),
        ("open('/etc/passwd')", "only these functions can be called"),
        ("(lambda: 1)()", "only these functions can be called"),
        ("lambda: 1", "Lambda expressions are not allowed"),
        ("[x for x in (1, 2)]", "ListComp expressions are not allowed"),
        ("sum(x for x in (1, 2))", "only these functions can be called"),
        ("(x := 1)", "NamedExpr expressions are not allowed"),
        ("x", "unknown name 'x'"),
        ("'a' * 3", "only real numbers are allowed"),
        ("True + 1", "only real numbers are allowed"),
        ("1j", "only real numbers are allowed"),
        ("1 < 2", "Compare expressions are not allowed"),
        ("1 << 1000", "LShift operator is not allowed"),
        ("not 1", "Not operator is not allowed"),
        ("1, 2", "Tuple expressions are not allowed"),
        ("round(2.5, ndigits=1)", "round() takes plain arguments only"),
        ("max(*[1, 2])", "max() takes plain arguments only"),
        ("sqrt(1, 2)", "wrong number of arguments for sqrt()"),
        # Arithmetic that has no answer.
        ("1 / 0", "division by zero"),
        ("1 // 0", "division by zero"),
        ("1 % 0", "modulo by zero"),
        ("0 ** -1", "zero cannot be raised to a negative power"),
        ("(-8) ** (1/3)", "not a real number"),
        ("sqrt(-1)", "not a real number"),
        ("round(1.5, 0.5)", "whole number"),
        # Not an expression.
        ("", "the expression is empty"),
        ("1 +", "not a valid expression"),
        ("1; 2", "not a valid expression"),
        ("import os", "not a valid expression"),
        ("1\x00", "not a valid expression"),
    ],
)
async def test_calculate_refuses(client, expression, message):
    text = tool_error(await call(client, "calculate", {"expression": expression}))
    assert text.startswith("Error executing tool calculate: ")
    assert message in text


async def test_calculate_limits_are_on_the_text_not_the_transport(client):
    # A long expression is the calculator's refusal (a tool error), not invalid params.
    text = tool_error(await call(client, "calculate", {"expression": "1" * 100_000}))
    assert "100000 characters, the limit is 1000" in text


# -- whoami --------------------------------------------------------------------------------------
async def test_whoami_returns_the_principal_of_the_request(server):
    info = request_info(user_id=42, username="alice", client_id="cid-1", scopes=("mcp", "extra"))
    async with connect(server, info) as client:
        result = await call(client, "whoami", {})
    assert result.is_error is False
    expected = {
        "user": {"id": 42, "username": "alice"},
        "client": {"client_id": "cid-1", "name": "Test client"},
        "scopes": ["extra", "mcp"],
    }
    assert result.structured_content == expected
    assert json.loads(result.content[0].text) == expected


async def test_whoami_without_a_principal_is_a_tool_error(server):
    async with connect(server, None) as client:
        assert "no authenticated user" in tool_error(await call(client, "whoami", {}))


# -- invalid params: JSON-RPC -32602, not tool errors ---------------------------------------------
async def invalid_params(client, name, arguments) -> str:
    with anyio.fail_after(PROMPT_SECONDS), pytest.raises(MCPError) as raised:
        await client.session.call_tool(name, arguments)
    assert raised.value.error.code == INVALID_PARAMS
    return raised.value.error.message


async def test_unknown_tool_is_invalid_params(client):
    assert await invalid_params(client, "nope", {}) == "Unknown tool: nope"


@pytest.mark.parametrize(
    ("name", "arguments", "problem"),
    [
        ("add", {"a": 1}, "'b' is a required property"),
        ("add", {}, "'a' is a required property"),
        ("add", {"a": "1", "b": 2}, "a: expected number, got string"),
        ("add", {"a": True, "b": 2}, "a: expected number, got boolean"),
        ("add", {"a": None, "b": 2}, "a: expected number, got null"),
        ("add", {"a": [1], "b": 2}, "a: expected number, got array"),
        ("add", {"a": 10**400, "b": 2}, "a: expected number, got a non-finite or out-of-range number"),
        ("sqrt", {"y": 4}, "'x' is a required property"),
        ("calculate", {"expression": 12}, "expression: expected string, got number"),
    ],
)
async def test_bad_arguments_are_invalid_params(client, name, arguments, problem):
    message = await invalid_params(client, name, arguments)
    assert message.startswith(f"Invalid arguments for tool {name}: ")
    assert problem in message


async def test_every_problem_is_named(client):
    message = await invalid_params(client, "power", {"base": "x"})
    assert "base: expected number, got string" in message
    assert "'exponent' is a required property" in message


async def test_a_huge_bad_argument_is_not_echoed_back(client):
    message = await invalid_params(client, "add", {"a": "x" * 100_000, "b": 1})
    assert len(message) < 500


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_bad_arguments(number):
    # JSON has no NaN or Infinity, but the JSON-RPC parser accepts those tokens.
    schema = {"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]}
    assert argument_problems(schema, {"a": number}) == ["a: expected number, got a non-finite or out-of-range number"]
    assert argument_problems(schema, {"a": 1.5}) == []


async def test_nan_on_the_wire_is_invalid_params(server):
    """A raw client (the SDK client would send null) sending the NaN token gets -32602."""

    def message(text: str) -> SessionMessage:
        return SessionMessage(jsonrpc_message_adapter.validate_json(text), metadata=ServerMessageMetadata())

    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
    }
    call_with_nan = '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add","arguments":{"a":NaN,"b":1}}}'
    with anyio.fail_after(PROMPT_SECONDS):
        async with tagged_streams(server, request_info()) as (read, write):
            await write.send(message(json.dumps(initialize)))
            await read.receive()
            await write.send(message('{"jsonrpc":"2.0","method":"notifications/initialized"}'))
            await write.send(message(call_with_nan))
            reply = (await read.receive()).message.model_dump(by_alias=True, exclude_none=True)
    assert reply["id"] == 2
    assert reply["error"]["code"] == INVALID_PARAMS
    assert "a: expected number, got a non-finite or out-of-range number" in reply["error"]["message"]
