from django.apps import AppConfig


class MCPAppConfig(AppConfig):
    name = "mcp_app"
    verbose_name = "MCP server"
