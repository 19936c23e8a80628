"""Site pages for people (the OAuth and MCP endpoints live in their own apps)."""

import json

from django.shortcuts import render
from django.views.decorators.http import require_safe

from oauth_app.origins import request_origin

MCP_PATH = "/mcp"
SSE_PATH = "/sse"


@require_safe
def landing(request):
    origin = request_origin(request)
    mcp_url = origin + MCP_PATH
    claude_desktop_config = {"mcpServers": {"django-mcp": {"command": "npx", "args": ["mcp-remote", mcp_url]}}}
    return render(
        request,
        "landing.html",
        {
            "origin": origin,
            "mcp_url": mcp_url,
            "sse_url": origin + SSE_PATH,
            "claude_desktop_config": json.dumps(claude_desktop_config, indent=2),
        },
    )
