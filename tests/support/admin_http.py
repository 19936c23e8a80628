"""The Django admin driven over HTTP, as a staff member's browser drives it.

    async with AdminSession(server.url, staff_username, staff_password) as admin:
        await admin.run_action("oauth2_provider", "accesstoken", "revoke_tokens", [pk])

Logging in and posting a changelist action go through Django's real CSRF
checks (the token from the page, the cookie, an `Origin` header), so this is
what a person clicking "Go" sends. Every step checks the status it expects.
"""

from __future__ import annotations

from http.cookiejar import CookieJar
from urllib.parse import urlsplit

import httpx2

from tests.support.browser import BrowserError, _LoopbackIsSecure, find_form


class AdminSession:
    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 15.0):
        self.base_url, self.username, self.password = base_url, username, password
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(base_url))
        self._http = httpx2.AsyncClient(
            base_url=base_url,
            cookies=CookieJar(_LoopbackIsSecure()),  # Secure cookies on loopback, as browsers send them
            headers={"origin": origin},  # browsers send Origin on form POSTs; Django's CSRF check reads it
            follow_redirects=False,
            timeout=timeout,
            trust_env=False,
        )

    async def __aenter__(self) -> AdminSession:
        await self._log_in()
        return self

    async def __aexit__(self, *exc) -> None:
        await self._http.aclose()

    async def _log_in(self) -> None:
        page = await self._http.get("/admin/login/", params={"next": "/admin/"})
        form = find_form(page.text, "csrfmiddlewaretoken") if page.status_code == 200 else None
        if form is None:
            raise BrowserError(f"admin login page: {page.status_code} {page.text[:500]}")
        answer = await self._http.post(
            "/admin/login/",
            data={**form.fields, "username": self.username, "password": self.password, "next": "/admin/"},
        )
        if answer.status_code != 302 or answer.headers.get("location") != "/admin/":
            raise BrowserError(f"admin login: expected a 302 to /admin/, got {answer.status_code} {answer.text[:1000]}")

    async def run_action(self, app_label: str, model: str, action: str, pks: list[int]) -> httpx2.Response:
        """Select `pks` on the model's changelist and run `action`; returns the page it redirects to."""
        changelist = f"/admin/{app_label}/{model}/"
        page = await self._http.get(changelist)
        form = find_form(page.text, "csrfmiddlewaretoken") if page.status_code == 200 else None
        if form is None:
            raise BrowserError(f"{changelist}: {page.status_code} {page.text[:500]}")
        data = {
            "csrfmiddlewaretoken": form.fields["csrfmiddlewaretoken"],
            "action": action,
            "_selected_action": [str(pk) for pk in pks],
            "select_across": "0",
            "index": "0",
        }
        answer = await self._http.post(changelist, data=data)
        if answer.status_code != 302:
            raise BrowserError(
                f"{action} on {changelist}: expected a 302 back, got {answer.status_code} {answer.text[:1000]}"
            )
        return await self._http.get(answer.headers["location"])
