"""What a locked-out login gets: django-axes' AXES_LOCKOUT_CALLABLE.

axes counts failed logins (by username and by address, mcpsite/settings.py) and,
past the limit, refuses the login and asks this function for the answer: a page
in the site's style, 429 with `Retry-After`, never cached.
"""

from axes.helpers import get_cool_off
from django.shortcuts import render

TEMPLATE = "registration/locked_out.html"


def lockout_response(request, original_response=None, credentials=None):
    # axes passes (request, original_response, credentials); its async middleware
    # passes the credentials in the second place. Neither is needed here.
    cool_off = get_cool_off(request)
    # Each refused try restarts the cool-off (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT),
    # so the whole cool-off is what is left.
    seconds = max(1, int(cool_off.total_seconds())) if cool_off else None
    response = render(request, TEMPLATE, {"minutes": -(-seconds // 60) if seconds else None}, status=429)
    if seconds:
        response["Retry-After"] = str(seconds)
    response["Cache-Control"] = "no-store"
    return response
