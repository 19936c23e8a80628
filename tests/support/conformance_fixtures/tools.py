"""The tools the suite calls, except the input-required ones (``input_required.py``).

They only use what the engine offers every tool: content blocks, progress, log
messages (``engine/logging_level.py``, which applies the client's level in either
era), requests to the client (``client_requests.py``), list-changed
announcements (``engine/list_changed.py``), resource updates and the low-level
server (``engine/sdk.py``). All are coroutines: none blocks, so none needs the
worker thread the SDK runs a plain function in.
"""

import asyncio
import json
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import AudioContent, EmbeddedResource, ImageContent, TextContent
from pydantic import Field

from mcp_app.engine import logging_level, sdk
from mcp_app.engine.list_changed import announce_list_changed
from mcp_app.engine.subscriptions import publish_resource_updated
from tests.support import client_requests
from tests.support.conformance_fixtures.media import AUDIO, IMAGE, embedded
from tests.support.conformance_fixtures.resources import WATCHED, WATCHED_URI

# The suite paces its logging and progress scenarios at about this interval.
STEP_SECONDS = 0.05
SAMPLING_MAX_TOKENS = 100
TOOLS_LIST = "tools/list"


async def simple_text() -> str:
    """Returns a fixed text."""
    return "This is a simple text response for testing."


async def image_content() -> ImageContent:
    """Returns a 1x1 red PNG."""
    return IMAGE


async def audio_content() -> AudioContent:
    """Returns a tenth of a second of silence as WAV."""
    return AUDIO


async def embedded_resource() -> EmbeddedResource:
    """Returns a text resource embedded in the result."""
    return embedded("test://embedded-resource", "This is an embedded resource content.")


async def multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
    """Returns text, an image and an embedded resource."""
    data = embedded("test://mixed-content-resource", json.dumps({"test": "data", "value": 123}), "application/json")
    return [TextContent(type="text", text="Multiple content types test:"), IMAGE, data]


async def tool_with_logging(ctx: Context) -> str:
    """Sends three info log messages while it runs."""
    await logging_level.log(ctx, "info", "Tool execution started")
    await asyncio.sleep(STEP_SECONDS)
    await logging_level.log(ctx, "info", "Tool processing data")
    await asyncio.sleep(STEP_SECONDS)
    await logging_level.log(ctx, "info", "Tool execution completed")
    return "Tool with logging executed successfully"


async def logging_tool(ctx: Context) -> str:
    """Sends one info log message, only if the client asked for info messages: per request in the
    stateless era (``_meta`` log level, none without it), per session in the handshake era."""
    await logging_level.log(ctx, "info", "Diagnostic trace logging activated")
    return "Logging evaluated"


async def error_handling() -> str:
    """Always fails, as a tool error."""
    raise ToolError("This tool intentionally returns an error for testing")


async def tool_with_progress(ctx: Context) -> str:
    """Reports progress 0, 50 and 100 of 100 when the call carries a progress token."""
    for done in (0, 50, 100):
        if done:
            await asyncio.sleep(STEP_SECONDS)
        await ctx.report_progress(done, 100)
    return "Tool with progress executed successfully"


async def sampling(prompt: str, ctx: Context) -> str:
    """Asks the client's model to answer the prompt (sampling/createMessage, handshake era)."""
    result = await client_requests.sample_text(ctx, prompt, max_tokens=SAMPLING_MAX_TOKENS)
    answer = result.content.text if isinstance(result.content, TextContent) else result.content.model_dump_json()
    return f"LLM response: {answer}"


async def elicitation(message: str, ctx: Context) -> str:
    """Asks the user for a username and an email address (elicitation/create, handshake era)."""
    schema = {
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"},
        },
        "required": ["username", "email"],
    }
    result = await client_requests.elicit_form(ctx, message, schema)
    return f"User response: action={result.action}, content={json.dumps(result.content)}"


async def elicitation_defaults(ctx: Context) -> str:
    """Elicits a form whose fields all have defaults (SEP-1034)."""
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {
                "type": "string",
                "description": "User status",
                "enum": ["active", "inactive", "pending"],
                "default": "active",
            },
            "verified": {"type": "boolean", "description": "Verification status", "default": True},
        },
    }
    result = await client_requests.elicit_form(ctx, "Please review and update the form fields with defaults", schema)
    return f"Elicitation completed: action={result.action}, content={json.dumps(result.content)}"


async def elicitation_enums(ctx: Context) -> str:
    """Elicits a form with each kind of enum field (SEP-1330)."""
    options = ["option1", "option2", "option3"]
    titled = [
        {"const": f"value{n}", "title": f"{word} Option"} for n, word in ((1, "First"), (2, "Second"), (3, "Third"))
    ]
    schema = {
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "enum": options},
            "titledSingle": {"type": "string", "oneOf": titled},
            "legacyEnum": {  # SEP-1330 keeps the deprecated enumNames readable
                "type": "string",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"],
            },
            "untitledMulti": {"type": "array", "items": {"type": "string", "enum": options}},
            "titledMulti": {"type": "array", "items": {"anyOf": titled}},
        },
    }
    result = await client_requests.elicit_form(ctx, "Please choose from each kind of list", schema)
    return f"Elicitation completed: action={result.action}, content={json.dumps(result.content)}"


async def missing_capability(ctx: Context) -> str:
    """Needs the client's sampling capability: without it, JSON-RPC -32021 naming it (SEP-2575)."""
    if not client_requests.declares(ctx, client_requests.SAMPLING):
        raise client_requests.capability_error(client_requests.SAMPLING, "sampling")
    return "Success"


async def reconnection(ctx: Context) -> str:
    """Closes its event stream before answering, so the client resumes with Last-Event-ID (SEP-1699)."""
    await ctx.close_sse_stream()  # a no-op unless the transport offers it
    await asyncio.sleep(STEP_SECONDS)
    return "Reconnection test completed successfully"


async def update_watched_resource() -> str:
    """Changes test://watched-resource and notifies the sessions subscribed to it."""
    WATCHED.version += 1
    subscribers = await publish_resource_updated(WATCHED_URI)
    return f"{WATCHED_URI} is now version {WATCHED.version}; {subscribers} subscriber(s) notified"


async def trigger_tool_change() -> str:
    """Announces that the tool list changed, to sessions and to subscriptions/listen streams."""
    await announce_list_changed("tools")
    return "Tool list change announced"


async def trigger_prompt_change() -> str:
    """Announces that the prompt list changed, to sessions and to subscriptions/listen streams."""
    await announce_list_changed("prompts")
    return "Prompt list change announced"


# SEP-1613: a tool whose input schema uses JSON Schema 2020-12, listed exactly as written.
JSON_SCHEMA_2020_12_TOOL = "json_schema_2020_12_tool"
JSON_SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


async def json_schema_2020_12_tool(
    name: str | None = None,
    address: dict[str, str] | None = None,
    contactMethod: Literal["phone", "email"] | None = None,  # noqa: N803 - the schema's property name
    phone: str | None = None,
    email: str | None = None,
) -> str:
    """Tool with JSON Schema 2020-12 features"""
    given = {"name": name, "address": address, "contactMethod": contactMethod, "phone": phone, "email": email}
    return json.dumps({key: value for key, value in given.items() if value is not None})


REGION = Field(description="Also sent as the Mcp-Param-Region header", json_schema_extra={"x-mcp-header": "Region"})


async def x_mcp_header(region: Annotated[str, REGION]) -> str:
    """Echoes its region, an argument the client mirrors into the Mcp-Param-Region header (SEP-2243)."""
    return f"region={region}"


def present_input_schema(server: MCPServer, tool: str, schema: dict[str, Any]) -> None:
    """List ``schema``, verbatim, as ``tool``'s input schema, and check calls against it.

    MCPServer derives a tool's schema from its type hints and has no way to set
    one; the low-level server's ``tools/list`` handler and ``get_tool_input_schema``
    (which the engine's argument check and the stateless era's header checks
    read) are public, so both are wrapped.
    """
    lowlevel = sdk.lowlevel_server(server)
    entry = lowlevel.get_request_handler(TOOLS_LIST)
    list_tools = entry.handler

    async def list_tools_as_written(ctx, params):
        result = await list_tools(ctx, params)
        listed = [t.model_copy(update={"input_schema": schema}) if t.name == tool else t for t in result.tools]
        return result.model_copy(update={"tools": listed})

    lowlevel.add_request_handler(TOOLS_LIST, entry.params_type, list_tools_as_written)
    derived = lowlevel.get_tool_input_schema
    lowlevel.get_tool_input_schema = lambda name: schema if name == tool else derived(name) if derived else None


TOOLS = {
    "test_simple_text": simple_text,
    "test_image_content": image_content,
    "test_audio_content": audio_content,
    "test_embedded_resource": embedded_resource,
    "test_multiple_content_types": multiple_content_types,
    "test_tool_with_logging": tool_with_logging,
    "test_logging_tool": logging_tool,
    "test_error_handling": error_handling,
    "test_tool_with_progress": tool_with_progress,
    "test_sampling": sampling,
    "test_elicitation": elicitation,
    "test_elicitation_sep1034_defaults": elicitation_defaults,
    "test_elicitation_sep1330_enums": elicitation_enums,
    "test_missing_capability": missing_capability,
    "test_reconnection": reconnection,
    "test_update_watched_resource": update_watched_resource,
    "test_trigger_tool_change": trigger_tool_change,
    "test_trigger_prompt_change": trigger_prompt_change,
    "test_x_mcp_header": x_mcp_header,
    JSON_SCHEMA_2020_12_TOOL: json_schema_2020_12_tool,
}


def install(server: MCPServer) -> None:
    for name, function in TOOLS.items():
        server.add_tool(function, name=name, structured_output=False)
    present_input_schema(server, JSON_SCHEMA_2020_12_TOOL, JSON_SCHEMA_2020_12)
