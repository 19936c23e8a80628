"""A Django app that exists only to show that any installed app can offer tools (mcp_tools.py)."""
