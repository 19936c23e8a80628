"""Argument completion (``completion/complete``) for prompts and resource templates.

MCPServer takes one completion handler for the whole server; ``Completions``
is that handler, dispatching to a completer per (prompt or URI template,
argument). A completer gets the partial value and the arguments the client
already filled in, and returns suggestions. Anything without a completer
gets no suggestions, which the spec allows.
"""

from collections.abc import Callable, Iterable, Mapping

from mcp.server.mcpserver import MCPServer
from mcp_types import Completion, CompletionArgument, CompletionContext, PromptReference, ResourceTemplateReference

Completer = Callable[[str, Mapping[str, str]], Iterable[str]]
# The spec caps one answer at 100 values; `total` and `hasMore` tell about the rest.
MAX_VALUES = 100
PROMPT_REF = "ref/prompt"
TEMPLATE_REF = "ref/resource"


class Completions:
    def __init__(self) -> None:
        self._completers: dict[tuple[str, str, str], Completer] = {}

    def add_for_prompt(self, prompt: str, argument: str, completer: Completer) -> None:
        self._completers[(PROMPT_REF, prompt, argument)] = completer

    def add_for_template(self, uri_template: str, argument: str, completer: Completer) -> None:
        self._completers[(TEMPLATE_REF, uri_template, argument)] = completer

    async def complete(
        self,
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion:
        target = ref.name if isinstance(ref, PromptReference) else ref.uri
        completer = self._completers.get((ref.type, target, argument.name))
        if completer is None:
            return Completion(values=[], total=0, has_more=False)
        filled = (context.arguments if context is not None else None) or {}
        values = list(completer(argument.value, filled))
        return Completion(values=values[:MAX_VALUES], total=len(values), has_more=len(values) > MAX_VALUES)


def install_completions(server: MCPServer) -> Completions:
    """Serve ``completion/complete`` on ``server`` (and advertise ``completions``); add completers to the result."""
    completions = Completions()
    server.completion()(completions.complete)
    return completions
