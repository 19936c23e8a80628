"""A stand-in for the person at the browser, for clients that open one through `$BROWSER`.

mcp-remote (through xdg-open) runs `$BROWSER <authorization URL>` when it needs a sign-in.
This script logs in and allows consent with tests/support/browser.py's HeadlessBrowser, then
delivers the redirect to the client's loopback callback with a GET, as a browser would.

    BROWSER="<python> tests/support/browser_hook.py"
    INTEROP_USERNAME=... INTEROP_PASSWORD=...   # the live server's user
    INTEROP_DECISION=allow|deny                 # the consent button (default allow)
    INTEROP_HOOK_LOG=/tmp/.../hook.log          # one line per run, "allowed …", "denied …" or
                                                # "FAILED …" (its stdio goes nowhere)
    INTEROP_REDIRECT_FILE=/tmp/.../redirect     # optional: write the redirect there instead of
                                                # following it (for a client that asks the user to
                                                # paste the address, like examples/python_client.py)
    INTEROP_CLIENT_LOG=/tmp/.../client.stderr   # optional, with INTEROP_CLIENT_READY: follow the
    INTEROP_CLIENT_READY="Waiting for ..."      # redirect only once the client's log has that text

Exits 0 only when the callback accepted the code (or the redirect was written), so the
opener reports a failure otherwise.
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_DIR))

import httpx2  # noqa: E402

from tests.support.browser import LOOPBACK_HOSTS, HeadlessBrowser  # noqa: E402

TIMEOUT = 15.0  # seconds per HTTP request, and for the client to be ready
POLL_SECONDS = 0.05  # how often the client's log is read while waiting for it to be ready
PAST = {"allow": "allowed", "deny": "denied"}


def _log(line: str) -> None:
    path = os.environ.get("INTEROP_HOOK_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(line.rstrip("\n") + "\n")


async def run(authorization_url: str) -> None:
    username, password = os.environ["INTEROP_USERNAME"], os.environ["INTEROP_PASSWORD"]
    decision = os.environ.get("INTEROP_DECISION", "allow")
    async with HeadlessBrowser(username, password, timeout=TIMEOUT) as browser:
        location = await browser.authorize(authorization_url, decision)
    if urlsplit(location).hostname not in LOOPBACK_HOSTS:
        raise AssertionError(f"the redirect leaves loopback: {location}")
    redirect_file = os.environ.get("INTEROP_REDIRECT_FILE")
    if redirect_file:
        partial = Path(redirect_file + ".partial")
        partial.write_text(location)
        partial.rename(redirect_file)  # appears whole
        _log(f"{PAST[decision]} {authorization_url} -> {location} -> {redirect_file}")
        return
    await _client_ready()
    # The client's callback server: a browser would follow the redirect there.
    async with httpx2.AsyncClient(timeout=TIMEOUT, trust_env=False) as http:
        answer = await http.get(location)
    _log(f"{PAST[decision]} {authorization_url} -> {location} -> callback {answer.status_code}")
    if decision == "allow" and answer.status_code != 200:
        raise AssertionError(f"callback answered {answer.status_code}: {answer.text[:500]}")


async def _client_ready() -> None:
    """Until the client's log (INTEROP_CLIENT_LOG) has the INTEROP_CLIENT_READY text, within TIMEOUT."""
    log, ready = os.environ.get("INTEROP_CLIENT_LOG"), os.environ.get("INTEROP_CLIENT_READY")
    if not (log and ready):
        return
    async with asyncio.timeout(TIMEOUT):
        while ready not in Path(log).read_text(errors="replace"):
            await asyncio.sleep(POLL_SECONDS)


def main() -> int:
    if len(sys.argv) != 2:
        _log(f"usage error: {sys.argv!r}")
        return 2
    try:
        asyncio.run(run(sys.argv[1]))
    except BaseException:
        _log(f"FAILED {sys.argv[1]}\n{traceback.format_exc(limit=2)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
