"""The audit trail in the admin: read-only, filterable, searchable.

Nobody adds or edits tool calls by hand; only superusers may delete them
(e.g. to purge old rows), so staff who can read the trail cannot trim it.
"""

from django.contrib import admin

from mcp_app.models import ToolCall


@admin.register(ToolCall)
class ToolCallAdmin(admin.ModelAdmin):
    list_display = ("created_at", "tool", "outcome", "username", "client_id", "session_id", "duration_ms")
    list_filter = ("outcome", "tool", "client_id", "created_at")
    search_fields = ("username", "tool", "session_id")
    date_hierarchy = "created_at"
    list_per_page = 100
    fields = (
        "created_at",
        "user",
        "username",
        "client_id",
        "session_id",
        "tool",
        "arguments",
        "outcome",
        "error_code",
        "error_message",
        "duration_ms",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser
