"""The prompts the suite gets, and the completion of ``test_prompt_with_arguments``'s ``arg1``.
(``test_input_required_result_prompt`` lives with the other input-required fixtures.)"""

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts import Prompt
from mcp.server.mcpserver.prompts.base import UserMessage

from mcp_app.engine.extensions import Features
from tests.support.conformance_fixtures.media import IMAGE, embedded


async def simple_prompt() -> str:
    """A prompt without arguments."""
    return "This is a simple prompt for testing."


async def prompt_with_arguments(arg1: str, arg2: str) -> str:
    """A prompt with two required arguments, arg1 and arg2."""
    return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


async def prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:  # noqa: N803 - the suite's argument name
    """A prompt that embeds the resource resourceUri names."""
    return [
        UserMessage(embedded(resourceUri, "Embedded resource content for testing.")),
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


def install(server: MCPServer, features: Features) -> None:
    for name, function in PROMPTS.items():
        server.add_prompt(Prompt.from_function(function, name=name))
    features.completions.add_for_prompt("test_prompt_with_arguments", "arg1", complete_arg1)
