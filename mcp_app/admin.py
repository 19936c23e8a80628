"""The MCP side in the admin: the tool-call audit trail, the tools themselves, and the
tasks (tool calls running on in the background), per person.

Nobody adds or edits tool calls by hand; only superusers may delete them
(e.g. to purge old rows), so staff who can read the trail cannot trim it.
The tools page is an overview (the registry is the list): each tool's access
rule, scopes and who holds its permission.
"""

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from mcp_app.engine.tasks import store
from mcp_app.engine.tasks.signals import CANCEL, signals
from mcp_app.models import Task, Tool, ToolCall


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


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    """Tasks are written by the server only. Staff who may change tasks can cancel running ones
    (the worker running each is told at once, wherever it is); the task's owner sees it
    cancelled on their next tasks/get."""

    list_display = ("created_at", "tool", "status", "user", "client_id", "status_message", "updated_at")
    list_filter = ("status", "tool", "created_at")
    search_fields = ("user__username", "tool", "id")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    list_per_page = 100
    actions = ("cancel_tasks",)
    fields = (
        "id",
        "user",
        "client_id",
        "tool",
        "status",
        "status_message",
        "created_at",
        "updated_at",
        "expires_at",
        "heartbeat_at",
        "input_requests",
        "result",
        "error",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_cancel_permission(self, request):
        return request.user.has_perm("mcp_app.change_task")

    @admin.action(description="Cancel the selected running tasks", permissions=["cancel"])
    def cancel_tasks(self, request, queryset):
        cancelled = 0
        for task_id in queryset.filter(status__in=store.ACTIVE).values_list("id", flat=True):
            if store.cancel_now(task_id, message=f"Cancelled by {request.user.get_username()} (staff)"):
                async_to_sync(signals.send)(task_id, CANCEL)
                cancelled += 1
        self.message_user(request, f"{cancelled} running task(s) cancelled.", messages.SUCCESS)


@admin.register(Tool)
class ToolAdmin(admin.ModelAdmin):
    """The registered tools (they have no table): who may call each, and the scopes each needs.
    Access is granted through the tools' permissions on the user and group pages."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # Who may call what is the permissions' business: those who may see them may see this.
        return request.user.is_active and request.user.has_perm("auth.view_permission")

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "MCP tools",
            "opts": self.model._meta,
            "tools": tool_overview(),
            "default_access": settings.MCP_TOOL_ACCESS,
        }
        return TemplateResponse(request, "admin/mcp_app/tool/overview.html", context)


def tool_overview() -> list[dict]:
    """Each registered tool with its rule, scopes and who holds its permission (groups, then users)."""
    from mcp_app.engine.access import permission_codename, rule_of
    from mcp_app.tools.registry import registered

    permissions = {
        permission.codename: permission
        for permission in Permission.objects.filter(
            content_type__app_label="mcp_app", content_type__model="tool"
        ).prefetch_related("group_set", "user_set")
    }
    overview = []
    for spec in registered():
        rule = rule_of(spec.name)
        permission = permissions.get(permission_codename(spec.name))
        overview.append(
            {
                "name": spec.name,
                "title": spec.title,
                "module": spec.function.__module__,
                "rule": rule if isinstance(rule, str) else "its own rule",
                "scopes": sorted(spec.scopes),
                "groups": sorted(group.name for group in permission.group_set.all()) if permission else [],
                "users": sorted(user.get_username() for user in permission.user_set.all()) if permission else [],
            }
        )
    return overview
