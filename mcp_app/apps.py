from django.apps import AppConfig


class MCPAppConfig(AppConfig):
    name = "mcp_app"
    verbose_name = "MCP server"

    def ready(self):
        from django.db.models.signals import post_migrate

        from mcp_app.engine import access
        from mcp_app.tools.registry import discover

        discover()  # every installed app's mcp_tools.py, as the admin finds admin.py
        access.connect_signals()  # the admin's permission changes reach the access checks
        post_migrate.connect(access.create_tool_permissions, dispatch_uid="mcp_app_tool_permissions")
