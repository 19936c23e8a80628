"""The fixtures the official MCP conformance suite expects of a server under test.

`@modelcontextprotocol/conformance` (server scenarios) calls tools, reads
resources and gets prompts by fixed names (``test_simple_text``,
``test://static-text``, ``test_simple_prompt``...) and checks what comes back.
This module provides them, with the texts and behaviour the suite's scenarios
describe. It is an engine extension: a server loads it only when
``MCP_EXTENSIONS`` names ``tests.support.conformance_fixtures``, as the tests do.

The fixtures only use what the engine offers every tool: content blocks,
progress, log messages (``engine/logging_level.py``), requests to the client
(``client_requests.py`` beside this file), subscriptions and completion. They are all coroutines:
none blocks, so none needs the worker thread the SDK runs a plain function in.
"""

import asyncio
import base64
import io
import json
import struct
import wave
import zlib

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts import Prompt
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp_types import AudioContent, EmbeddedResource, ImageContent, TextContent, TextResourceContents

from mcp_app.engine import logging_level
from mcp_app.engine.extensions import Features
from mcp_app.engine.subscriptions import publish_resource_updated
from tests.support import client_requests

# This module's import path: what MCP_EXTENSIONS names to load it.
CONFORMANCE_FIXTURES = __name__
# The suite paces its logging and progress scenarios at about this interval.
STEP_SECONDS = 0.05
SAMPLING_MAX_TOKENS = 100
PNG = "image/png"
WAV = "audio/wav"
WATCHED_URI = "test://watched-resource"
TEMPLATE_URI = "test://template/{id}/data"


def _one_pixel_png(red: int, green: int, blue: int) -> bytes:
    """A 1x1 RGB PNG: signature, header, one compressed scanline, end."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # width, height, 8 bits, truecolour, no interlace
    scanline = bytes([0, red, green, blue])  # filter type 0, then the pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanline)) + chunk(b"IEND", b"")


def _silent_wav(seconds: float = 0.1, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)  # 8-bit PCM, whose silence is 0x80
        out.setframerate(rate)
        out.writeframes(b"\x80" * int(seconds * rate))
    return buffer.getvalue()


RED_PIXEL = _one_pixel_png(255, 0, 0)
IMAGE = ImageContent(type="image", data=base64.b64encode(RED_PIXEL).decode(), mime_type=PNG)
AUDIO = AudioContent(type="audio", data=base64.b64encode(_silent_wav()).decode(), mime_type=WAV)


def _embedded(uri: str, text: str, mime_type: str = "text/plain") -> EmbeddedResource:
    return EmbeddedResource(type="resource", resource=TextResourceContents(uri=uri, mime_type=mime_type, text=text))


# -- tools ---------------------------------------------------------------------------
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
    return _embedded("test://embedded-resource", "This is an embedded resource content.")


async def multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
    """Returns text, an image and an embedded resource."""
    data = _embedded("test://mixed-content-resource", json.dumps({"test": "data", "value": 123}), "application/json")
    return [TextContent(type="text", text="Multiple content types test:"), IMAGE, data]


async def tool_with_logging(ctx: Context) -> str:
    """Sends three info log messages while it runs."""
    await logging_level.log(ctx, "info", "Tool execution started")
    await asyncio.sleep(STEP_SECONDS)
    await logging_level.log(ctx, "info", "Tool processing data")
    await asyncio.sleep(STEP_SECONDS)
    await logging_level.log(ctx, "info", "Tool execution completed")
    return "Tool with logging executed successfully"


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
    """Asks the client's model to answer the prompt (sampling/createMessage)."""
    result = await client_requests.sample_text(ctx, prompt, max_tokens=SAMPLING_MAX_TOKENS)
    answer = result.content.text if isinstance(result.content, TextContent) else result.content.model_dump_json()
    return f"LLM response: {answer}"


async def elicitation(message: str, ctx: Context) -> str:
    """Asks the user for a username and an email address (elicitation/create)."""
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


async def reconnection(ctx: Context) -> str:
    """Closes its event stream before answering, so the client resumes with Last-Event-ID (SEP-1699)."""
    await ctx.close_sse_stream()  # a no-op unless the transport offers it
    await asyncio.sleep(STEP_SECONDS)
    return "Reconnection test completed successfully"


class WatchedResource:
    """``test://watched-resource``: text that changes when ``update_watched_resource`` runs."""

    def __init__(self) -> None:
        self.version = 0

    def read(self) -> str:
        return f"Watched resource, version {self.version}."


WATCHED = WatchedResource()


async def update_watched_resource() -> str:
    """Changes test://watched-resource and notifies the sessions subscribed to it."""
    WATCHED.version += 1
    subscribers = await publish_resource_updated(WATCHED_URI)
    return f"{WATCHED_URI} is now version {WATCHED.version}; {subscribers} subscriber(s) notified"


TOOLS = {
    "test_simple_text": simple_text,
    "test_image_content": image_content,
    "test_audio_content": audio_content,
    "test_embedded_resource": embedded_resource,
    "test_multiple_content_types": multiple_content_types,
    "test_tool_with_logging": tool_with_logging,
    "test_error_handling": error_handling,
    "test_tool_with_progress": tool_with_progress,
    "test_sampling": sampling,
    "test_elicitation": elicitation,
    "test_elicitation_sep1034_defaults": elicitation_defaults,
    "test_elicitation_sep1330_enums": elicitation_enums,
    "test_reconnection": reconnection,
    "test_update_watched_resource": update_watched_resource,
}


# -- prompts -------------------------------------------------------------------------
async def simple_prompt() -> str:
    """A prompt without arguments."""
    return "This is a simple prompt for testing."


async def prompt_with_arguments(arg1: str, arg2: str) -> str:
    """A prompt with two required arguments, arg1 and arg2."""
    return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


async def prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:  # noqa: N803 - the suite's argument name
    """A prompt that embeds the resource resourceUri names."""
    return [
        UserMessage(_embedded(resourceUri, "Embedded resource content for testing.")),
        UserMessage("Please process the embedded resource above."),
    ]


async def prompt_with_image() -> list[UserMessage]:
    """A prompt with an image."""
    return [UserMessage(IMAGE), UserMessage("Please analyze the image above.")]


PROMPTS = {
    "test_simple_prompt": simple_prompt,
    "test_prompt_with_arguments": prompt_with_arguments,
    "test_prompt_with_embedded_resource": prompt_with_embedded_resource,
    "test_prompt_with_image": prompt_with_image,
}
ARG1_SUGGESTIONS = ("paris", "park", "party", "test", "testing")


def complete_arg1(partial: str, _filled) -> list[str]:
    return [value for value in ARG1_SUGGESTIONS if value.startswith(partial)]


# -- registration --------------------------------------------------------------------
def install(server: MCPServer, features: Features) -> None:
    for name, function in TOOLS.items():
        server.add_tool(function, name=name, structured_output=False)
    for name, function in PROMPTS.items():
        server.add_prompt(Prompt.from_function(function, name=name))
    features.completions.add_for_prompt("test_prompt_with_arguments", "arg1", complete_arg1)

    @server.resource("test://static-text", name="static_text", description="A fixed text.", mime_type="text/plain")
    async def static_text() -> str:
        return "This is the content of the static text resource."

    @server.resource("test://static-binary", name="static_binary", description="A 1x1 red PNG.", mime_type=PNG)
    async def static_binary() -> bytes:
        return RED_PIXEL

    @server.resource(
        WATCHED_URI,
        name="watched_resource",
        description="Changes when test_update_watched_resource runs.",
        mime_type="text/plain",
    )
    async def watched_resource() -> str:
        return WATCHED.read()

    @server.resource(
        TEMPLATE_URI, name="template_data", description="JSON data for any id.", mime_type="application/json"
    )
    async def template_data(id: str) -> str:  # noqa: A002 - the template's variable name
        return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})
