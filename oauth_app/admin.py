"""Admin for OAuth clients, tokens and grants, with revoke actions, and the auth event trail.

DOT registers its own admin classes for the token models; the swapped-in
Application model is registered here, and the token admins gain actions that
revoke properly (the token and, for refresh tokens, the whole rotation family).
Each revocation from here goes to the auth event trail, naming the staff member.
"""

from django.contrib import admin, messages
from oauth2_provider.admin import AccessTokenAdmin, ApplicationAdmin, RefreshTokenAdmin
from oauth2_provider.models import get_access_token_model, get_refresh_token_model, revoke_access_token
from oauth2_provider.settings import oauth2_settings

from oauth_app import events
from oauth_app.models import Application, AuthEvent, RedeemedCode, RegistrationToken


def _record_admin_revocation(request, token, what: str) -> None:
    events.record(
        AuthEvent.Kind.TOKEN_REVOKED,
        request=request,
        user=token.user,
        client_id=token.application.client_id if token.application_id else "",
        detail=f"{what} revoked in the admin by {request.user.get_username()}",
    )


class MCPApplicationAdmin(ApplicationAdmin):
    """Every client, however it came: by hand, dynamic registration, or its client ID metadata
    document (`registration_source` "Client ID Metadata Document", its URL as the client id)."""

    list_display = (
        "name",
        "client_id",
        "client_type",
        "registration_source",
        "application_type",
        "registered_from",
        "user",
        "created",
        "last_used_at",
        "cimd_expires_at",
    )
    list_filter = (
        "registration_source",
        "client_type",
        "application_type",
        "authorization_grant_type",
        "skip_authorization",
    )
    search_fields = ("name", "client_id")
    # DOT's own read-only fields stay read-only: registration_source decides which code path may
    # change a client (RFC 7592 for dynamic ones, the refetched document for CIMD ones).
    readonly_fields = (
        *ApplicationAdmin.readonly_fields,
        "application_type",
        "registered_from",
        "created",
        "updated",
        "last_used_at",
    )
    actions = ["revoke_all_tokens"]

    @admin.action(description="Revoke every token issued to the selected clients")
    def revoke_all_tokens(self, request, queryset):
        refresh_tokens = get_refresh_token_model().objects.filter(application__in=queryset, revoked__isnull=True)
        access_tokens = get_access_token_model().objects.filter(application__in=queryset)
        count = access_tokens.count()
        for token in refresh_tokens:
            token.revoke()
        for token in access_tokens:
            token.revoke()
        for application in queryset:
            events.record(
                AuthEvent.Kind.TOKEN_REVOKED,
                request=request,
                client_id=application.client_id,
                detail=f"every token of the client revoked in the admin by {request.user.get_username()}",
            )
        self.message_user(request, f"Revoked {count} access token(s) and their refresh tokens.", messages.SUCCESS)


def _registration_scope() -> str:
    return oauth2_settings.DCR_REGISTRATION_SCOPE


class RevokingAccessTokenAdmin(AccessTokenAdmin):
    """The people's access tokens. RFC 7592 registration tokens, which every self-registered
    client also holds, are listed apart (``RegistrationTokenAdmin``): among these they were most
    of the rows after one newcomer's session, with nothing saying what they were."""

    actions = ["revoke_tokens"]

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(scope=_registration_scope())

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            "subtitle": "The access tokens people's clients hold. Each self-registered client's RFC 7592 "
            "registration token is listed apart, under RFC 7592 registration tokens.",
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context)

    @admin.action(description="Revoke the selected access tokens")
    def revoke_tokens(self, request, queryset):
        count = 0
        for token in queryset.select_related("user", "application"):
            label = f"access token #{token.pk}"
            # DOT's shared revoke path: the bound refresh token goes too, or it could mint a new one.
            revoke_access_token(token)
            _record_admin_revocation(request, token, label)
            count += 1
        self.message_user(request, f"Revoked {count} access token(s).", messages.SUCCESS)


class RevokingRefreshTokenAdmin(RefreshTokenAdmin):
    actions = ["revoke_families"]

    @admin.action(description="Revoke the selected refresh tokens and their rotation families")
    def revoke_families(self, request, queryset):
        RefreshToken = get_refresh_token_model()
        for token in queryset.select_related("user", "application"):
            if token.token_family:
                RefreshToken.revoke_family(token.token_family)
                _record_admin_revocation(request, token, f"refresh token #{token.pk} and its family")
            else:
                token.revoke()
                _record_admin_revocation(request, token, f"refresh token #{token.pk}")
        self.message_user(request, "Revoked the selected refresh tokens and their families.", messages.SUCCESS)


@admin.register(RegistrationToken)
class RegistrationTokenAdmin(admin.ModelAdmin):
    list_display = ("pk", "application", "created", "expires")
    list_select_related = ("application",)
    search_fields = ("application__client_id", "application__name")
    fields = ("application", "created", "expires", "scope")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).filter(scope=_registration_scope())

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            "subtitle": "Given to each client that registered itself (RFC 7591), so that it alone can read, "
            "change or delete its own registration at /register/<client_id> (RFC 7592). Not a person's "
            "login: it opens no MCP endpoint. Deleting one leaves the client unable to manage its "
            "registration; housekeeping removes it with the client when the client is never used.",
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


for model, admin_class in (
    (Application, MCPApplicationAdmin),
    (get_access_token_model(), RevokingAccessTokenAdmin),
    (get_refresh_token_model(), RevokingRefreshTokenAdmin),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, admin_class)


@admin.register(RedeemedCode)
class RedeemedCodeAdmin(admin.ModelAdmin):
    list_display = ("redeemed_at", "access_token", "token_family")
    readonly_fields = ("code_checksum", "access_token", "token_family", "redeemed_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AuthEvent)
class AuthEventAdmin(admin.ModelAdmin):
    """Read-only for everyone: the trail is written by the server and trimmed by
    `manage.py housekeeping` (MCP_AUDIT_RETENTION_DAYS), never edited by hand."""

    list_display = ("created_at", "kind", "username", "client_id", "address", "detail")
    list_filter = ("kind", "created_at")
    search_fields = ("username", "client_id")
    date_hierarchy = "created_at"
    list_per_page = 100
    fields = ("created_at", "kind", "user", "username", "client_id", "address", "detail")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
