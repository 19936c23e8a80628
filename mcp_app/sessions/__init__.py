"""Sessions of the handshake era: one protocol-engine task per MCP session, owned by this process.

``session.py`` holds ``MCPSession``: the engine loop, the streams a transport
reads, and the routing of the engine's output to the POST or GET waiting for
it. ``event_log.py`` keeps what was sent, so a client can resume a stream
(``Last-Event-ID``); ``event_queue.py`` is the queue a transport reads from.

May import: ``engine``, ``principal``, ``protocol``. Never ``transport``,
``cluster`` or ``guards``: the transports drive sessions, not the other way.
"""
