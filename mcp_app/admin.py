"""The MCP side in the admin: the tool-call audit trail, and the tools themselves.

Nobody adds or edits tool calls by hand; only superusers may delete them
(e.g. to purge old rows), so staff who can read the trail cannot trim it.
The tools page is an overview (the registry is the list): each tool's access
rule, scopes and who holds its permission.
"""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from mcp_app.models import Tool, ToolCall


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
