"""The protocol engine: the ``mcp`` SDK's server, adapted to this project.

``server.py`` builds the one ``MCPServer`` of the process; ``sdk.py`` is the
only module that touches the SDK's private API. The protocol features
``MCPServer`` leaves to its user are a module each (``connected.py``,
``logging_level.py``, ``subscriptions.py``, ``list_changed.py``,
``completions.py``), as are the server middleware around ``tools/call``
(``arguments.py``, ``audit.py``, ``limits.py``) and the loading of
extensions named in settings (``extensions.py``). The audit trail's rollups
(``audit_rollup.py``, written with its rows) are what the admin's dashboard
reads (``audit_report.py``), beside its CSV export (``audit_export.py``); its
writes run on the database driver's own cursor (``dbapi.py``), and on SQLite
their checkpoints on a thread of their own (``sqlite_checkpoints.py``; both
threads start as ``db_threads.py`` says). Requests served outside of any
session go through an ``exchange.py`` (``stateless.py`` for the 2026-07-28 era);
tool calls that run on as tasks are ``tasks/``; what workers broadcast to each
other travels through ``protocol/groups.py`` (``fanout.py``, ``tasks/signals.py``).

May import: ``tools``, ``principal``, ``protocol``, ``models``. Never
``transport``, ``sessions``, ``cluster`` or ``guards``: the engine knows
nothing of HTTP or of where a session lives.
"""
