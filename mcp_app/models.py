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
