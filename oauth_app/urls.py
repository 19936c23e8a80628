"""OAuth endpoints at the site root, under DOT's namespace so its views can
reverse each other. Paths have no trailing slash: they are protocol URLs
that clients build from the metadata, not pages. The per-address rate limits
(oauth_app/ratelimit.py) are applied here, around the views, and nowhere else."""

from django.urls import path, re_path
from oauth2_provider import views as dot_views

from oauth_app.ratelimit import rate_limited
from oauth_app.redirect_uris import refuse_invalid_redirect_ports
from oauth_app.views import authorize, metadata, registration, token

app_name = "oauth2_provider"

urlpatterns = [
    path(
        ".well-known/oauth-authorization-server",
        dot_views.OAuthServerMetadataView.as_view(),
        name="oauth-server-metadata",
    ),
    path(
        ".well-known/oauth-protected-resource",
        metadata.ProtectedResourceMetadataView.as_view(),
        name="oauth-resource-metadata",
    ),
    # RFC 9728 §3.1: clients also look under the MCP endpoint's own path.
    re_path(
        r"^\.well-known/oauth-protected-resource/(?P<resource_path>mcp|sse)$",
        metadata.ProtectedResourceMetadataView.as_view(),
        name="oauth-resource-metadata-path",
    ),
    path(
        "authorize",
        rate_limited("authorize", refuse_invalid_redirect_ports(authorize.ConsentView.as_view())),
        name="authorize",
    ),
    path("token", rate_limited("token", token.TokenView.as_view()), name="token"),
    path("revoke", rate_limited("revoke", token.RevokeTokenView.as_view()), name="revoke-token"),
    path("register", rate_limited("register", registration.RegistrationView.as_view()), name="dcr-register"),
    path(
        "register/<str:client_id>",
        rate_limited("register-management", registration.RegistrationManagementView.as_view()),
        name="dcr-register-management",
    ),
]
