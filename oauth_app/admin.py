"""Admin for OAuth clients, tokens and grants, with revoke actions.

DOT registers its own admin classes for the token models; the swapped-in
Application model is registered here, and the token admins gain actions that
revoke properly (the token and, for refresh tokens, the whole rotation family).
"""

from django.contrib import admin, messages
from oauth2_provider.admin import AccessTokenAdmin, ApplicationAdmin, RefreshTokenAdmin
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from oauth_app.models import Application, RedeemedCode


class MCPApplicationAdmin(ApplicationAdmin):
    list_display = ("name", "client_id", "client_type", "registration_source", "registered_from", "user", "created")
    list_filter = ("client_type", "authorization_grant_type", "registration_source", "skip_authorization")
    readonly_fields = ("registered_from", "created", "updated")
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
        self.message_user(request, f"Revoked {count} access token(s) and their refresh tokens.", messages.SUCCESS)


class RevokingAccessTokenAdmin(AccessTokenAdmin):
    actions = ["revoke_tokens"]

    @admin.action(description="Revoke the selected access tokens")
    def revoke_tokens(self, request, queryset):
        count = 0
        for token in queryset:
            token.revoke()
            count += 1
        self.message_user(request, f"Revoked {count} access token(s).", messages.SUCCESS)


class RevokingRefreshTokenAdmin(RefreshTokenAdmin):
    actions = ["revoke_families"]

    @admin.action(description="Revoke the selected refresh tokens and their rotation families")
    def revoke_families(self, request, queryset):
        RefreshToken = get_refresh_token_model()
        for token in queryset:
            if token.token_family:
                RefreshToken.revoke_family(token.token_family)
            else:
                token.revoke()
        self.message_user(request, "Revoked the selected refresh tokens and their families.", messages.SUCCESS)


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
