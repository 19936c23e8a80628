"""The identity tool: who this server believes is calling.

The transport attaches a ``RequestInfo`` to every message; its principal is
what the bearer token stands for (``mcp_app/principal.py``).
"""

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from mcp_app.principal import principal_from_context
from mcp_app.tools.registry import mcp_tool


class User(BaseModel):
    id: int = Field(description="The user's id on this server.")
    username: str


class OAuthClient(BaseModel):
    client_id: str
    name: str = Field(description="The name the client registered with.")


class Identity(BaseModel):
    user: User = Field(description="The user the access token was issued to.")
    client: OAuthClient = Field(description="The OAuth client the access token was issued to.")
    scopes: list[str] = Field(description="The scopes granted to the access token, sorted.")


@mcp_tool(title="Who am I", read_only=True)
async def whoami(ctx: Context) -> Identity:
    """Who you are to this server: the user and the OAuth client the access token
    was issued to, and the scopes it grants."""
    try:
        principal = principal_from_context(ctx)
    except LookupError:
        raise ToolError("this request carries no authenticated user") from None
    return Identity(
        user=User(id=principal.user_id, username=principal.username),
        client=OAuthClient(client_id=principal.client_id, name=principal.client_name),
        scopes=sorted(principal.scopes),
    )
