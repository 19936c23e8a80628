"""RFC 9728 protected-resource metadata for the MCP endpoints.

DOT's RFC 8414 view is used as is. For RFC 9728 the `resource` is always this
server's origin: a prefix of both `/mcp` and `/sse`, so one token serves both
transports and clients that fetch the path-suffixed document agree with the
root one.
"""

from oauth2_provider.views import OAuthProtectedResourceMetadataView

from oauth_app.origins import request_origin


class ProtectedResourceMetadataView(OAuthProtectedResourceMetadataView):
    def get_resource(self, request):
        return request_origin(request)

    def get_authorization_servers(self, request):
        return [request_origin(request)]

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        response["Cache-Control"] = "public, max-age=300"
        return response
