"""Tool calls that run as tasks: the ``io.modelcontextprotocol/tasks`` extension (SEP-2663).

A client of the stateless era (2026-07-28) that declares the extension in a
request's capabilities may get, for a tool that supports tasks, a
``CreateTaskResult`` instead of the tool's result: a task id, at once, while the
call runs on in the background. The client polls ``tasks/get`` until the task
ends (its result or error inlined), answers the questions the call asks
(``input_required`` → ``tasks/update``) and may ``tasks/cancel`` it. A task
outlives the request that created it, the client's connection and the per-call
time limit; it is kept for ``MCP_TASK_TTL_SECONDS``.

    extension.py  the SDK extension: which tools run as tasks, the tools/call
                  interceptor that starts them, tasks/get, tasks/update, tasks/cancel
    runner.py     a task's call in the background: the engine's full chain
                  (access, audit, limits), its questions parked as input requests,
                  its end written down; cancellation
    store.py      the ``Task`` rows (every worker reads and writes the same) and
                  their wire shape
    signals.py    "cancel" and "answers arrived" for the worker running a task,
                  over the channel layer (Redis with REDIS_URL)
    current.py    which task, if any, the running code belongs to

The 2025-11-25 era has no such extension (SEP-2663 says so: its capability
must not enable tasks under that version), so sessions of that era run a
task-supporting tool within the call, as any other tool.
"""
