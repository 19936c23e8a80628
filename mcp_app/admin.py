"""The MCP side in the admin: the tool-call audit trail, the tools themselves, and the
tasks (tool calls running on in the background), per person.

Nobody adds or edits tool calls by hand; only superusers may delete them
(e.g. to purge old rows), so staff who can read the trail cannot trim it.
The tools page is an overview (the registry is the list): each tool's access
rule, scopes and who holds its permission. The dashboard sums the trail up over
a range of days (from its rollups, ``engine/audit_rollup.py``) and exports it as CSV.
"""

import functools
import logging
from datetime import date, timedelta
from urllib.parse import urlencode

from asgiref.sync import async_to_sync
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.models import Permission
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Max, Min, Sum
from django.http import HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from oauth2_provider.models import get_application_model

from mcp_app.engine import audit_export, audit_report, audit_rollup
from mcp_app.engine.tasks import store
from mcp_app.engine.tasks.signals import CANCEL, signals
from mcp_app.models import CallerRollup, Dashboard, Task, Tool, ToolCall, ToolCallRollup
from oauth_app.models import AuthEvent

logger = logging.getLogger(__name__)


class ToolFilter(admin.SimpleListFilter):
    """The tools that were ever called, from the rollups (a few rows a day), not a SELECT DISTINCT
    over the whole audit trail."""

    title = "tool"
    parameter_name = "tool"

    def lookups(self, request, model_admin):
        names = set(ToolCallRollup.objects.order_by().values_list("tool", flat=True).distinct())
        if self.value() is not None:
            names.add(self.value())  # rows the rollups do not hold yet (written around the audit)
        return [(name, name or "(no name)") for name in sorted(names)]

    def queryset(self, request, queryset):
        return queryset if self.value() is None else queryset.filter(tool=self.value())


class ClientFilter(admin.SimpleListFilter):
    """The clients that called most in the last 30 days, by name, from the rollups: a server
    may know thousands of clients, too many to list, and listing them all would mean a
    SELECT DISTINCT over the whole audit trail."""

    title = "OAuth client (most active in the last 30 days)"
    parameter_name = "client_id"
    shown = 20

    def lookups(self, request, model_admin):
        since = timezone.localdate() - timedelta(days=29)
        busiest = (
            CallerRollup.objects.filter(day__gte=since)
            .exclude(client_id="")
            .values("client_id")
            .annotate(calls=Sum("calls"))
            .order_by("-calls", "client_id")[: self.shown]
        )
        client_ids = [row["client_id"] for row in busiest]
        if self.value() is not None and self.value() not in client_ids:
            client_ids.append(self.value())
        names = dict(get_application_model().objects.filter(client_id__in=client_ids).values_list("client_id", "name"))
        return [(client_id, _client_label(client_id, names.get(client_id))) for client_id in client_ids]

    def queryset(self, request, queryset):
        return queryset if self.value() is None else queryset.filter(client_id=self.value())


def _client_label(client_id: str, name: str | None) -> str:
    short = client_id if len(client_id) <= 12 else client_id[:10] + "…"
    return f"{name} ({short})" if name else short or "(none)"


@admin.register(ToolCall)
class ToolCallAdmin(admin.ModelAdmin):
    """Read over a million rows and more: the filters list what the rollups hold, the indexes
    serve each filter newest first, and a filtered page counts only its own rows
    (docs/performance.md). No date hierarchy: its year, month and day links are a SELECT
    DISTINCT over every row; the date filter and the dashboard's days lead to a day instead."""

    list_display = ("created_at", "tool", "outcome", "username", "client_id", "session_id", "duration_ms")
    list_filter = ("outcome", ToolFilter, ClientFilter, "created_at")
    search_fields = ("username", "tool", "session_id")
    show_full_result_count = False
    list_per_page = 100
    fields = (
        "created_at",
        "user",
        "username",
        "client_id",
        "session_id",
        "tool",
        "arguments",
        "outcome",
        "error_code",
        "error_message",
        "duration_ms",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    # Deleted rows leave the rollups: their days are counted again.
    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        day = audit_rollup.day_of(obj.created_at)
        audit_rollup.rebuild(day, day)

    def delete_queryset(self, request, queryset):
        span = queryset.aggregate(first=Min("created_at"), last=Max("created_at"))
        super().delete_queryset(request, queryset)
        if span["first"] is not None:
            audit_rollup.rebuild(audit_rollup.day_of(span["first"]), audit_rollup.day_of(span["last"]))


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    """Tasks are written by the server only. Staff who may change tasks can cancel running ones
    (the worker running each is told at once, wherever it is); the task's owner sees it
    cancelled on their next tasks/get."""

    list_display = ("created_at", "tool", "status", "user", "client_id", "status_message", "updated_at")
    list_filter = ("status", "tool", "created_at")
    search_fields = ("user__username", "tool", "id")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    list_per_page = 100
    actions = ("cancel_tasks",)
    fields = (
        "id",
        "user",
        "client_id",
        "tool",
        "status",
        "status_message",
        "created_at",
        "updated_at",
        "expires_at",
        "heartbeat_at",
        "input_requests",
        "result",
        "error",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_cancel_permission(self, request):
        return request.user.has_perm("mcp_app.change_task")

    @admin.action(description="Cancel the selected running tasks", permissions=["cancel"])
    def cancel_tasks(self, request, queryset):
        cancelled = 0
        for task_id in queryset.filter(status__in=store.ACTIVE).values_list("id", flat=True):
            if store.cancel_now(task_id, message=f"Cancelled by {request.user.get_username()} (staff)"):
                async_to_sync(signals.send)(task_id, CANCEL)
                cancelled += 1
        self.message_user(request, f"{cancelled} running task(s) cancelled.", messages.SUCCESS)


@admin.register(Tool)
class ToolAdmin(admin.ModelAdmin):
    """The registered tools (they have no table): who may call each, and the scopes each needs.
    Access is granted through the tools' permissions on the user and group pages."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # Who may call what is the permissions' business: those who may see them may see this.
        return request.user.is_active and request.user.has_perm("auth.view_permission")

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "MCP tools",
            "opts": self.model._meta,
            "tools": tool_overview(),
            "default_access": settings.MCP_TOOL_ACCESS,
        }
        return TemplateResponse(request, "admin/mcp_app/tool/overview.html", context)


def tool_overview() -> list[dict]:
    """Each registered tool with its rule, scopes and who holds its permission (groups, then users)."""
    from mcp_app.engine.access import permission_codename, rule_of
    from mcp_app.tools.registry import registered

    permissions = {
        permission.codename: permission
        for permission in Permission.objects.filter(
            content_type__app_label="mcp_app", content_type__model="tool"
        ).prefetch_related("group_set", "user_set")
    }
    overview = []
    for spec in registered():
        rule = rule_of(spec.name)
        permission = permissions.get(permission_codename(spec.name))
        overview.append(
            {
                "name": spec.name,
                "title": spec.title,
                "module": spec.function.__module__,
                "rule": rule if isinstance(rule, str) else "its own rule",
                "scopes": sorted(spec.scopes),
                "groups": sorted(group.name for group in permission.group_set.all()) if permission else [],
                "users": sorted(user.get_username() for user in permission.user_set.all()) if permission else [],
            }
        )
    return overview


# ---------------------------------------------------------------------------
# The dashboard: the audit trails summed up over a range of days, and the CSV export.
# ---------------------------------------------------------------------------
DEFAULT_DAYS = 30
MAX_DAYS = 366  # a year, leap day included: enough for a trend, bounded for the page
EARLIEST = date(1970, 1, 1)
LATEST = date(9999, 12, 30)  # the day after must still be a date
QUICK_RANGES = (7, 30, 90, 365)


class DateRangeForm(forms.Form):
    """The days to show, both included, in the server's time zone. Without dates: the last 30."""

    start = forms.DateField(
        required=False,
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[MinValueValidator(EARLIEST), MaxValueValidator(LATEST)],
    )
    end = forms.DateField(
        required=False,
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[MinValueValidator(EARLIEST), MaxValueValidator(LATEST)],
    )

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        end = cleaned.get("end") or timezone.localdate()
        start = cleaned.get("start") or max(EARLIEST, end - timedelta(days=DEFAULT_DAYS - 1))
        if start > end:
            raise forms.ValidationError("The start date is after the end date.", code="reversed")
        days = (end - start).days + 1
        if days > MAX_DAYS:
            raise forms.ValidationError(
                "A range covers at most %(max)d days; this one covers %(days)d.",
                code="too_long",
                params={"max": MAX_DAYS, "days": days},
            )
        cleaned["start"], cleaned["end"] = start, end
        return cleaned

    def days(self) -> tuple[date, date]:
        return self.cleaned_data["start"], self.cleaned_data["end"]


@admin.register(Dashboard)
class DashboardAdmin(admin.ModelAdmin):
    """Tool calls per day and per tool (errors, p50 and p99 durations), who called, and the auth
    events over a range of days; the audit trail of the range as CSV. For whoever may view tool
    calls; the auth events only for those who may also view those."""

    def has_view_permission(self, request, obj=None):
        user = request.user
        return user.is_active and user.is_staff and user.has_perm("mcp_app.view_toolcall")

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path("", self._guarded(self.dashboard_view), name="mcp_app_dashboard_changelist"),
            path("export/", self._guarded(self.export_view), name="mcp_app_dashboard_export"),
        ]

    def _guarded(self, view):
        """Sign in first; then staff who may view tool calls, and 403 for anyone else (the admin's
        own wrapper would send a signed-in non-staff person back to the login form instead)."""

        @functools.wraps(view)
        def guarded(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(
                    request.get_full_path(), reverse("admin:login", current_app=self.admin_site.name)
                )
            if not self.has_view_permission(request):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return never_cache(require_safe(guarded))

    def dashboard_view(self, request):
        form = DateRangeForm(request.GET)
        context = {
            **self.admin_site.each_context(request),
            "title": "Tool-call dashboard",
            "opts": self.model._meta,
            "form": form,
            "quick_ranges": [
                (days, urlencode({"start": (timezone.localdate() - timedelta(days=days - 1)).isoformat()}))
                for days in QUICK_RANGES
            ],
        }
        if not form.is_valid():
            return TemplateResponse(request, "admin/mcp_app/dashboard.html", context, status=400)
        first, last = form.days()
        context["form"] = DateRangeForm(initial={"start": first, "end": last})  # the dates shown, defaults included
        report = audit_report.tool_call_report(first, last)
        may_see_auth = request.user.has_perm("oauth_app.view_authevent")
        auth = audit_report.auth_event_counts(first, last) if may_see_auth else None
        changelist = reverse("admin:mcp_app_toolcall_changelist", current_app=self.admin_site.name)
        range_query = urlencode({"start": first.isoformat(), "end": last.isoformat()})
        day_links = {day.day: f"{changelist}?{_moments_query(day.day, day.day)}" for day in report.days}
        context.update(
            report=report,
            first=first,
            last=last,
            days=[(figures, day_links[figures.day]) for figures in reversed(report.days)],  # newest first
            tools=[
                _tool_row(figures, f"{changelist}?{_moments_query(first, last, tool=figures.name)}")
                for figures in report.tools
            ],
            total=_tool_row(report.total, f"{changelist}?{_moments_query(first, last)}"),
            auth=[(kind, label, auth[kind]) for kind, label in _auth_labels(auth)] if auth is not None else None,
            auth_cards=[(kind, label, auth[kind]) for kind, label in CARD_LABELS.items()] if auth is not None else [],
            auth_changelist=reverse("admin:oauth_app_authevent_changelist", current_app=self.admin_site.name),
            auth_moments=_moments_query(first, last),
            range_changelist=f"{changelist}?{_moments_query(first, last)}",
            export_url=reverse("admin:mcp_app_dashboard_export", current_app=self.admin_site.name) + "?" + range_query,
            percentile_error=audit_report.PERCENTILE_ERROR_PERCENT,
            time_zone=settings.TIME_ZONE,
            chart_data=_chart_data(report, day_links),
        )
        return TemplateResponse(request, "admin/mcp_app/dashboard.html", context)

    def export_view(self, request):
        form = DateRangeForm(request.GET)
        if not form.is_valid():
            problems = [str(message) for messages_ in form.errors.values() for message in messages_]
            return HttpResponse("\n".join(problems) + "\n", status=400, content_type="text/plain; charset=utf-8")
        first, last = form.days()
        logger.info("tool-call audit export of %s to %s by %s", first, last, request.user.get_username())
        # Under ASGI an async iterator, or Django would read every row before sending one.
        rows = audit_export.alines(first, last) if isinstance(request, ASGIRequest) else audit_export.lines(first, last)
        response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{audit_export.filename(first, last)}"'
        return response


def _tool_row(figures: audit_report.CallFigures, link: str) -> dict:
    """A line of the dashboard's table of tools, its figures as text."""
    return {
        "name": figures.name,
        "link": link,
        "calls": figures.calls,
        "tool_errors": figures.tool_errors,
        "protocol_errors": figures.protocol_errors,
        "error_rate": _percent(figures.error_rate),
        "mean": _milliseconds(figures.mean_ms),
        "p50": _milliseconds(figures.p50_ms),
        "p99": _milliseconds(figures.p99_ms),
    }


def _percent(fraction: float | None) -> str:
    return "–" if fraction is None else f"{fraction * 100:.2f}%"


def _milliseconds(value: float | None) -> str:
    """About three significant digits: the percentiles are estimates to 4.4%."""
    if value is None:
        return "–"
    if value < audit_rollup.SMALLEST_MS:
        return "< 0.001"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value >= 0.01 else f"{value:.3f}"


def _moments_query(first: date, last: date, **filters) -> str:
    """The changelist query for the days ``first`` to ``last`` (its date filter's parameters)."""
    start, end = audit_rollup.day_bounds(first, last)
    return urlencode({**filters, "created_at__gte": start.isoformat(), "created_at__lt": end.isoformat()})


# The dashboard's cards say these in the plural.
CARD_LABELS = {
    AuthEvent.Kind.TOKEN_ISSUED: "tokens issued",
    AuthEvent.Kind.TOKEN_REFRESHED: "tokens refreshed",
    AuthEvent.Kind.TOKEN_REVOKED: "tokens revoked",
    AuthEvent.Kind.LOCKED_OUT: "lockouts",
}


def _auth_labels(counts: dict[str, int]) -> list[tuple[str, str]]:
    labels = dict(AuthEvent.Kind.choices)
    return [(kind, labels.get(kind, kind)) for kind in counts]


def _chart_data(report: audit_report.Report, day_links: dict) -> dict:
    """What dashboard.js draws, handed over in a JSON data block (no inline script)."""
    return {
        "days": [
            {"day": d.day.isoformat(), "ok": d.ok, "errors": d.errors, "link": day_links[d.day]} for d in report.days
        ],
        "tools": [
            {
                "name": t.name,
                "calls": t.calls,
                "errors": t.errors,
                "p50": t.p50_ms,
                "p99": t.p99_ms,
            }
            for t in report.tools
        ],
    }
