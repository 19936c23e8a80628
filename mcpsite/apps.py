from django.apps import AppConfig


class SiteConfig(AppConfig):
    name = "mcpsite"
    label = "mcpsite"
    verbose_name = "MCP site"

    def ready(self):
        from mcpsite import checks  # noqa: F401  (registers the configuration checks)
