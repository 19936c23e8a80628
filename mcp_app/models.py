from django.conf import settings
from django.db import models
from django.utils import timezone

TOOL_NAME_CHARS = 128  # MCP's recommended maximum for tool names; longer (bogus) names are cut
ERROR_MESSAGE_CHARS = 500


class ToolCall(models.Model):
    """One ``tools/call`` request and how it ended: the audit trail (``engine/audit.py``).

    Who called is kept twice: a link to the user, and a snapshot of the username
    and client that survives the user or client being deleted.
    """

    class Outcome(models.TextChoices):
        OK = "ok", "ok"
        TOOL_ERROR = "tool_error", "tool error"  # the tool ran and reported an error (isError)
        PROTOCOL_ERROR = "protocol_error", "protocol error"  # answered with a JSON-RPC error

    created_at = models.DateTimeField(default=timezone.now, db_index=True, help_text="When the call arrived.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="tool_calls"
    )
    username = models.CharField(max_length=150, blank=True)
    client_id = models.CharField(max_length=255, blank=True, help_text="The OAuth client of the access token.")
    session_id = models.CharField(max_length=128, blank=True, help_text="The MCP session, if the call had one.")
    tool = models.CharField(max_length=TOOL_NAME_CHARS)
    arguments = models.TextField(
        blank=True,
        help_text="The arguments as JSON, cut to MCP_AUDIT_ARGUMENT_CHARS (ending in …); "
        "empty when MCP_AUDIT_ARGUMENTS is off.",
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error_code = models.IntegerField(null=True, blank=True, help_text="The JSON-RPC error code of a protocol error.")
    error_message = models.CharField(max_length=ERROR_MESSAGE_CHARS, blank=True)
    duration_ms = models.FloatField(help_text="Time to answer the call, in milliseconds.")

    class Meta:
        ordering = ["-created_at"]
        # The admin's filters, newest first (its changelist over a million rows, docs/performance.md).
        indexes = [
            models.Index(fields=["tool", "created_at"], name="mcp_toolcall_tool_created"),
            models.Index(fields=["client_id", "created_at"], name="mcp_toolcall_client_created"),
            models.Index(fields=["outcome", "created_at"], name="mcp_toolcall_outcome_created"),
        ]

    def __str__(self):
        who = self.username or "anonymous"
        return f"{self.tool} by {who} at {self.created_at:%Y-%m-%d %H:%M:%S} ({self.outcome})"


class Tool(models.Model):
    """The MCP tools, for their permissions (``call_<name>``, granted in the admin).

    No table: the registry (``mcp_app/tools/registry.py``) is the list of tools; this model
    only gives their permissions a content type (``engine/access.py``)."""

    class Meta:
        managed = False
        default_permissions = ()
        verbose_name = "MCP tool"


class Task(models.Model):
    """A tool call running as a task (the ``io.modelcontextprotocol/tasks`` extension, ``engine/tasks/``).

    The row is the task's state, shared by every worker: whichever worker answers
    ``tasks/get`` reads it here, while the worker that runs the call writes it.
    A task belongs to the person and the OAuth client that created it; nobody else
    can see it.
    """

    class Status(models.TextChoices):
        WORKING = "working", "working"
        INPUT_REQUIRED = "input_required", "input required"  # waiting for the client's answers
        COMPLETED = "completed", "completed"  # the call returned a result (which may say isError)
        FAILED = "failed", "failed"  # the call ended in a JSON-RPC error
        CANCELLED = "cancelled", "cancelled"

    TERMINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    id = models.CharField(primary_key=True, max_length=64, help_text="The taskId: random, unguessable.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mcp_tasks")
    client_id = models.CharField(max_length=255, help_text="The OAuth client that created it.")
    tool = models.CharField(max_length=TOOL_NAME_CHARS)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WORKING, db_index=True)
    status_message = models.CharField(max_length=ERROR_MESSAGE_CHARS, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True, help_text="Forgotten after this (created_at + ttlMs).")
    heartbeat_at = models.DateTimeField(
        default=timezone.now, help_text="Last sign of life of the worker running it (while not finished)."
    )
    poll_interval_ms = models.PositiveIntegerField()
    result = models.JSONField(null=True, blank=True, help_text="The tool's result, once completed.")
    error = models.JSONField(null=True, blank=True, help_text="The JSON-RPC error, if it failed.")
    input_requests = models.JSONField(default=dict, blank=True, help_text="Questions waiting for the client, by key.")
    input_responses = models.JSONField(
        default=dict, blank=True, help_text="Answers the client sent that the call has not taken yet, by key."
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "status"])]

    def __str__(self):
        return f"{self.tool} ({self.status}) {self.id[:8]}…"

    @property
    def finished(self) -> bool:
        return self.status in self.TERMINAL


class ToolCallRollup(models.Model):
    """The audit trail summed per day, tool and duration bucket, for the admin's dashboard.

    Kept up to date in the transaction that writes the ``ToolCall`` rows
    (``engine/audit_rollup.py``), and rebuilt from them by ``manage.py rebuild_audit_rollups``.
    The buckets are a log-scale histogram of durations: percentiles over any range of days
    come from summing them, without reading a single audit row.
    """

    day = models.DateField(help_text="The day of the calls, in the server's time zone (TIME_ZONE).")
    tool = models.CharField(max_length=TOOL_NAME_CHARS)
    bucket = models.SmallIntegerField(help_text="The duration bucket (engine/audit_rollup.py).")
    calls = models.BigIntegerField(default=0)
    tool_errors = models.BigIntegerField(default=0)
    protocol_errors = models.BigIntegerField(default=0)
    duration_ms_sum = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "tool", "bucket"], name="mcp_toolcallrollup_key")]

    def __str__(self):
        return f"{self.tool} on {self.day}, bucket {self.bucket}: {self.calls} calls"


class CallerRollup(models.Model):
    """Who called on each day: one row per day, person (the audit's username snapshot) and
    OAuth client, with their number of calls. Maintained with ``ToolCallRollup``; it answers
    "how many people and clients were active" over a range without scanning the audit trail."""

    day = models.DateField()
    username = models.CharField(max_length=150, blank=True)
    client_id = models.CharField(max_length=255, blank=True)
    calls = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "username", "client_id"], name="mcp_callerrollup_key")]

    def __str__(self):
        return f"{self.username or 'anonymous'} with {self.client_id or 'no client'} on {self.day}: {self.calls} calls"


class Dashboard(models.Model):
    """The tool-call dashboard in the admin (``admin.py``, ``DashboardAdmin``).

    No table: this model only gives the dashboard its place in the admin's index. Whoever
    may view tool calls may see it."""

    class Meta:
        managed = False
        default_permissions = ()
        verbose_name = "dashboard"
        verbose_name_plural = "dashboard"
