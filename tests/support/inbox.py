"""Not a client but what an SDK client is given to hold what arrives outside of answers:
the notifications it received, and its answers to the server's sampling and elicitation requests.

    inbox = Inbox()
    Client(transport, message_handler=inbox.on_message, sampling_callback=inbox.on_sampling,
           elicitation_callback=inbox.on_elicitation)
    await inbox.next_of_type(ResourceUpdatedNotification)   # bounded by TIMEOUT
"""

import anyio
from mcp_types import CreateMessageResult, ElicitResult, TextContent

TIMEOUT = 10  # seconds for any one expected message
WATCHED = "test://watched-resource"  # the conformance fixtures' resource that changes on demand
SAMPLED_ANSWER = "forty-two"
ELICITED = {"username": "alice", "email": "alice@example.com"}


class Inbox:
    """What the client received outside of answers: notifications, and the server's requests."""

    def __init__(self):
        self.notifications = []
        self.arrived = anyio.Event()
        self.sampling_requests = []
        self.elicitation_requests = []

    async def on_message(self, message):
        self.notifications.append(message)
        self.arrived.set()

    def of_type(self, kind):
        return [n for n in self.notifications if isinstance(n, kind)]

    async def next_of_type(self, kind):
        with anyio.fail_after(TIMEOUT):
            while not self.of_type(kind):
                self.arrived = anyio.Event()
                await self.arrived.wait()
        return self.of_type(kind)[-1]

    async def on_sampling(self, _context, params):
        self.sampling_requests.append(params)
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text=SAMPLED_ANSWER), model="test-model"
        )

    async def on_elicitation(self, _context, params):
        self.elicitation_requests.append(params)
        return ElicitResult(action="accept", content=ELICITED)
