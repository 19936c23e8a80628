"""Drivers for real third-party MCP clients (npm packages from package.json) used by
tests/test_interop_clients.py: mcp-remote over stdio, the Inspector CLI, and the
`$BROWSER` hook that signs in for them headlessly."""
