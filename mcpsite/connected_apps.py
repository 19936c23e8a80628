"""The Connected apps page: each OAuth client that can use this server as the signed-in person,
who it is, what it may do, when it was allowed and last issued a token, its tool calls for
them, and a Revoke (one client, or every client: "Sign out everywhere") behind a confirmation.

It lives in the project rather than in ``oauth_app`` because it joins the two apps: the
grants come from ``oauth_app.connections`` and the tool calls from the MCP audit trail
(``ToolCall``), which ``oauth_app`` must not know. Every query is narrowed to the signed-in
person; another person's client is "not found", whatever id is asked for.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Max
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from mcp_app.models import ToolCall
from oauth_app import connections
from oauth_app.consent import remembering

# The value of the confirmation pages' submit button: a POST without it revokes nothing.
CONFIRM = "revoke"


def _with_tool_calls(user, found: list) -> list:
    """Each connection as a dict for the template, with its tool calls for `user`."""
    calls = {
        row["client_id"]: row
        for row in ToolCall.objects.filter(user=user, client_id__in=[c.application.client_id for c in found])
        .values("client_id")
        .annotate(count=Count("id"), last=Max("created_at"))
    }
    return [
        {
            "connection": connection,
            "application": connection.application,
            "tool_calls": calls.get(connection.application.client_id, {}).get("count", 0),
            "last_tool_call": calls.get(connection.application.client_id, {}).get("last"),
        }
        for connection in found
    ]


@never_cache
@login_required
@require_safe
def connected_apps(request):
    found = connections.connections_of(request.user)
    return render(
        request,
        "account/connected_apps.html",
        {
            "apps": _with_tool_calls(request.user, found),
            "remembering": remembering(),
            "retention_days": settings.MCP_AUDIT_RETENTION_DAYS,
        },
    )


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def revoke(request, pk: int):
    connection = connections.connection_of(request.user, pk)
    if connection is None:
        raise Http404("No connected app of yours has this id.")
    if request.method == "POST":
        if request.POST.get("confirm") == CONFIRM:
            revoked = connections.disconnect(request.user, connection.application, request=request)
            messages.success(
                request,
                f"{_name(connection)} no longer has access: {revoked}.",
            )
            return redirect("connected-apps")
        return _confirmation(request, "account/revoke_app.html", {"item": connection}, unconfirmed=True)
    return _confirmation(request, "account/revoke_app.html", {"item": connection})


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def revoke_all(request):
    if request.method == "POST":
        if request.POST.get("confirm") == CONFIRM:
            count = connections.disconnect_all(request.user, request=request)
            messages.success(request, f"Signed out everywhere: {count} app(s) no longer have access.")
            return redirect("connected-apps")
        return _confirmation(request, "account/revoke_all.html", _everything(request), unconfirmed=True)
    return _confirmation(request, "account/revoke_all.html", _everything(request))


def _everything(request) -> dict:
    return {"apps": connections.connections_of(request.user)}


def _confirmation(request, template: str, context: dict, *, unconfirmed: bool = False):
    """The confirmation page; after a POST that did not confirm, the same page saying nothing was done (400)."""
    return render(
        request,
        template,
        {**context, "confirm": CONFIRM, "unconfirmed": unconfirmed},
        status=400 if unconfirmed else 200,
    )


def _name(connection) -> str:
    if connection.verified_host:
        return f"The application from {connection.verified_host}"
    return connection.application.name or "The unnamed application"
