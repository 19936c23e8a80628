"""`manage.py housekeeping`: the periodic clean-up, run daily by
deploy/systemd/mcp-housekeeping.timer (or cron).

Removes, and prints how many of each it removed:
- expired access tokens, refresh tokens and grants (django-oauth-toolkit's own
  `clear_expired`, the rules of its `cleartokens` command);
- dynamically registered clients never used: no code or token ever issued to them
  (Application.last_used_at unset, none held now) and registered more than
  MCP_UNUSED_CLIENT_DAYS days ago;
- records of redeemed authorization codes whose tokens are all gone (a replay of
  such a code has nothing left to revoke);
- tool-call and auth-event audit rows older than MCP_AUDIT_RETENTION_DAYS days (and the
  tool-call dashboard's rollups of those days);
- tasks past their time to live (MCP_TASK_TTL_SECONDS), which tasks/get no longer finds.
A setting of 0 days keeps those rows. Running it twice in a row removes nothing the
second time.
"""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from oauth2_provider.models import (
    clear_expired,
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_refresh_token_model,
)
from oauth2_provider.settings import oauth2_settings

from mcp_app.engine import audit_rollup
from mcp_app.models import Task, ToolCall
from oauth_app.models import AuthEvent, RedeemedCode


class Command(BaseCommand):
    help = "Remove expired tokens and grants, never-used registered clients, spent code records and old audit rows."

    def handle(self, *args, **options):
        now = timezone.now()
        removed = {}
        removed.update(self._expired_tokens())
        removed["never-used registered clients"] = self._unused_clients(now)
        removed["redeemed-code records with no tokens left"] = self._spent_code_records()
        removed["tool-call audit rows"] = self._older_than(ToolCall, now)
        if removed["tool-call audit rows"] is not None:
            # The dashboard's rollups forget the same days, and recount the one cut in two.
            audit_rollup.forget_before(now - timedelta(days=settings.MCP_AUDIT_RETENTION_DAYS))
        removed["auth events"] = self._older_than(AuthEvent, now)
        removed["expired tasks"] = Task.objects.filter(expires_at__lte=now).delete()[0]
        for what, count in removed.items():
            if count is None:
                self.stdout.write(f"{what}: kept (set to 0 days)")
            else:
                self.stdout.write(f"{what}: {count} removed")

    @staticmethod
    def _expired_tokens() -> dict[str, int]:
        # clear_expired reports only to its logger; count around it.
        models = {
            "expired access tokens": get_access_token_model(),
            "expired refresh tokens": get_refresh_token_model(),
            "expired grants": get_grant_model(),
        }
        before = {what: model.objects.count() for what, model in models.items()}
        clear_expired()
        return {what: max(0, before[what] - model.objects.count()) for what, model in models.items()}

    @staticmethod
    def _unused_clients(now) -> int | None:
        days = settings.MCP_UNUSED_CLIENT_DAYS
        if days == 0:
            return None
        Application = get_application_model()
        # Every registered client holds its RFC 7592 registration token from the start: not use.
        tokens = get_access_token_model().objects.exclude(scope=oauth2_settings.DCR_REGISTRATION_SCOPE)
        unused = (
            Application.objects.filter(
                registration_source=Application.RegistrationSource.DCR,
                last_used_at__isnull=True,
                created__lt=now - timedelta(days=days),
            )
            .exclude(Exists(tokens.filter(application=OuterRef("pk"))))
            .exclude(Exists(get_refresh_token_model().objects.filter(application=OuterRef("pk"))))
            .exclude(Exists(get_grant_model().objects.filter(application=OuterRef("pk"))))
        )
        with transaction.atomic():
            # Deleting a client deletes its registration token with it (foreign key cascade).
            _total, per_model = unused.delete()
        return per_model.get(Application._meta.label, 0)

    @staticmethod
    def _spent_code_records() -> int:
        live_families = (
            get_refresh_token_model()
            .objects.filter(revoked__isnull=True, token_family__isnull=False)
            .values("token_family")
        )
        spent = RedeemedCode.objects.filter(access_token__isnull=True).exclude(token_family__in=live_families)
        return spent.delete()[0]

    @staticmethod
    def _older_than(model, now) -> int | None:
        days = settings.MCP_AUDIT_RETENTION_DAYS
        if days == 0:
            return None
        return model.objects.filter(created_at__lt=now - timedelta(days=days)).delete()[0]
