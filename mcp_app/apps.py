from django.apps import AppConfig


class MCPAppConfig(AppConfig):
    name = "mcp_app"
    verbose_name = "MCP server"

    def ready(self):
        # Every installed app's mcp_tools.py, as the admin finds admin.py.
        from mcp_app.tools.registry import discover

        discover()
