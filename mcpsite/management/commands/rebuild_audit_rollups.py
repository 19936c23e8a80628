"""`manage.py rebuild_audit_rollups [--from DAY] [--to DAY]`: count the tool-call dashboard's
rollups again from the audit rows (`mcp_app/engine/audit_rollup.py`).

The audit keeps them up to date as it writes, and `housekeeping` and the admin's delete
after they delete; run this after audit rows were written or deleted any other way (an
import, a restore, SQL by hand), or after changing TIME_ZONE, which moves the days. Without
dates it recounts every day that has audit rows or rollups; with one, from or to that day. Each day is counted in a
transaction of its own while the server keeps running; its audit writes wait for it.
"""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from mcp_app.engine import audit_rollup


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"not a day (YYYY-MM-DD): {text!r}") from None


class Command(BaseCommand):
    help = "Recount the tool-call dashboard's rollups from the audit rows (all days, or --from/--to)."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="first", type=_day, help="first day to recount (YYYY-MM-DD)")
        parser.add_argument("--to", dest="last", type=_day, help="last day to recount (YYYY-MM-DD), included")

    def handle(self, *args, first=None, last=None, **options):
        if first and last and first > last:
            raise CommandError(f"--from {first} is after --to {last}")
        days = audit_rollup.rebuild(first, last)
        self.stdout.write(f"rollups recounted: {days} day(s) with tool calls")
