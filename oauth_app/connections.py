"""The OAuth clients a person has connected, and taking their access back: what the Connected
apps page shows and does (its view, ``mcpsite/connected_apps.py``, adds the tool calls).

A client is connected to a person while it holds something of theirs that still works: an
unexpired access token, a refresh token neither revoked nor expired, an unexpired authorization
code, or their consent record (``ClientConsent``, which with ``MCP_REMEMBER_CONSENT`` lets it
get a new code without asking). Disconnecting takes all of those back at once, the rows that no
longer work included, and every query here is narrowed to the one person: nobody reaches
another person's grants through these functions, whatever client they name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_refresh_token_model,
    refresh_token_expire_timedelta,
)
from oauth2_provider.settings import oauth2_settings

from oauth_app import consent, events
from oauth_app.cimd import verified_host
from oauth_app.models import AuthEvent, ClientConsent
from oauth_app.scopes import all_scopes

# Dynamic registration may hand a client a registration token (for RFC 7592) bound to whoever
# was signed in: the client's credential to manage its registration, not a grant of theirs.
_NOT_GRANTS = Q(scope=oauth2_settings.DCR_REGISTRATION_SCOPE)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Where the trail says a revocation came from.
ON_THE_PAGE = "by the person on the Connected apps page"
EVERYWHERE = "by the person on the Connected apps page (sign out everywhere)"


@dataclass
class Connection:
    application: object  # the swapped-in Application
    scopes: list[tuple[str, str]]  # (scope, what the consent page calls it), the server's own first
    allowed_at: datetime | None  # first Allow since the last revocation (else the oldest grant held)
    last_issued_at: datetime | None  # the newest token or code it was issued for the person
    consent_recorded: bool
    access_tokens: int
    refresh_tokens: int
    codes: int

    @property
    def verified_host(self) -> str:
        """For a client known from its metadata document: the host that served it (as on the consent page)."""
        return verified_host(self.application.client_id) if self.application.registered_by_document else ""


def _live_rows(user):
    """The person's access tokens, refresh tokens and codes that still work, and consent records."""
    now = timezone.now()
    refresh_delta = refresh_token_expire_timedelta()
    # A refresh token dies that long after its access token expires (DOT's validate_refresh_token).
    refresh_alive = Q(revoked__isnull=True, access_token__isnull=False)
    if refresh_delta:
        refresh_alive &= Q(access_token__expires__gt=now - refresh_delta)
    access = get_access_token_model().objects.filter(user=user, application__isnull=False, expires__gt=now)
    access = access.exclude(_NOT_GRANTS)
    refresh = get_refresh_token_model().objects.filter(refresh_alive, user=user).select_related("access_token")
    codes = get_grant_model().objects.filter(user=user, expires__gt=now)
    consents = ClientConsent.objects.filter(user=user)
    return list(access), list(refresh), list(codes), list(consents)


def _ordered_scopes(names: set[str]) -> list[tuple[str, str]]:
    described = all_scopes()
    known = [(name, text) for name, text in described.items() if name in names]
    # A scope no longer declared (its app removed) is still shown, by its name.
    return known + [(name, name) for name in sorted(names - described.keys())]


def connections_of(user) -> list[Connection]:
    """Every client connected to `user`, the most recently issued first."""
    access, refresh, codes, consents = _live_rows(user)
    by_client: dict[int, dict] = {}

    def entry(application_id):
        return by_client.setdefault(
            application_id, {"scopes": set(), "times": [], "consent": None, "access": 0, "refresh": 0, "codes": 0}
        )

    for token in access:
        row = entry(token.application_id)
        row["access"] += 1
        row["scopes"].update(token.scope.split())
        row["times"].append(token.created)
    for token in refresh:
        row = entry(token.application_id)
        row["refresh"] += 1
        row["scopes"].update(token.access_token.scope.split())  # what a refresh will be issued
        row["times"].extend([token.created, token.access_token.created])
    for grant in codes:
        row = entry(grant.application_id)
        row["codes"] += 1
        row["scopes"].update(grant.scope.split())
        row["times"].append(grant.created)
    for record in consents:
        row = entry(record.application_id)
        row["consent"] = record
        row["scopes"].update(record.scopes)

    applications = get_application_model().objects.in_bulk(list(by_client))
    connections = []
    for application_id, row in by_client.items():
        record = row["consent"]
        times = row["times"]
        connections.append(
            Connection(
                application=applications[application_id],
                scopes=_ordered_scopes(row["scopes"]),
                allowed_at=record.granted_at if record else min(times, default=None),
                last_issued_at=max(times, default=None),
                consent_recorded=record is not None,
                access_tokens=row["access"],
                refresh_tokens=row["refresh"],
                codes=row["codes"],
            )
        )
    connections.sort(key=lambda c: (c.last_issued_at or c.allowed_at or _EPOCH, c.application.pk), reverse=True)
    return connections


def connection_of(user, application_pk) -> Connection | None:
    """The connection of `user` to the client with this primary key, if it is one of theirs."""
    return next((c for c in connections_of(user) if c.application.pk == application_pk), None)


@dataclass
class Revoked:
    access_tokens: int = 0
    refresh_tokens: int = 0
    codes: int = 0
    consent: bool = False

    def __str__(self):
        consent_text = "; consent forgotten" if self.consent else ""
        return (
            f"{self.access_tokens} access token(s), {self.refresh_tokens} refresh token(s), "
            f"{self.codes} authorization code(s){consent_text}"
        )


def disconnect(user, application, *, request=None, by: str = ON_THE_PAGE) -> Revoked:
    """Take back everything `application` holds of `user`, and record it in the auth event trail."""
    access = get_access_token_model().objects.filter(user=user, application=application).exclude(_NOT_GRANTS)
    refresh = get_refresh_token_model().objects.filter(user=user, application=application, revoked__isnull=True)
    codes = get_grant_model().objects.filter(user=user, application=application)
    with transaction.atomic():
        revoked = Revoked(access_tokens=access.count(), refresh_tokens=refresh.count(), codes=codes.count())
        # DOT's revoke(): the refresh token is marked revoked (so neither it nor an older member of
        # its rotation family can mint again) and its access token deleted.
        for token in refresh:
            token.revoke()
        # The access tokens left (those without a refresh token). Deleting the rows is what
        # revokes them: the MCP workers' caches drop a token whose row is deleted.
        for token in access:
            token.revoke()
        codes.delete()
        revoked.consent = consent.forget(user, application) > 0
    events.record(
        AuthEvent.Kind.TOKEN_REVOKED,
        request=request,
        user=user,
        client_id=application.client_id,
        detail=f"every grant of the client revoked {by}: {revoked}",
    )
    return revoked


def disconnect_all(user, *, request=None) -> int:
    """Disconnect every client `user` has ever granted anything still stored; the number of clients."""
    application_ids = set()
    application_ids.update(
        get_access_token_model().objects.filter(user=user).exclude(_NOT_GRANTS).values_list("application_id", flat=True)
    )
    for model in (get_grant_model(), ClientConsent):
        application_ids.update(model.objects.filter(user=user).values_list("application_id", flat=True))
    application_ids.update(
        get_refresh_token_model()
        .objects.filter(user=user, revoked__isnull=True)
        .values_list("application_id", flat=True)
    )
    application_ids.discard(None)
    applications = get_application_model().objects.filter(pk__in=application_ids)
    for application in applications:
        disconnect(user, application, request=request, by=EVERYWHERE)
    return len(applications)
