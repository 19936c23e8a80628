"""The access log of `python -m mcpsite.serve` (how `make run` and the systemd unit run daphne)
never holds a credential sent in a query string."""

import httpx2
import pytest

from mcpsite.serve import redact_path
from tests.support.live_server import start_live_server

pytestmark = pytest.mark.live


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/mcp", "/mcp"),
        ("/authorize?client_id=abc&state=xyz", "/authorize?client_id=abc&state=xyz"),
        ("/mcp?access_token=s3cret", "/mcp?access_token=[redacted]"),
        ("/callback?code=c0de&state=x&iss=http%3A%2F%2Fh", "/callback?code=[redacted]&state=x&iss=http%3A%2F%2Fh"),
        ("/x?Refresh_Token=r&client_secret=s&a=", "/x?Refresh_Token=[redacted]&client_secret=[redacted]&a="),
    ],
)
def test_redact_path(path, expected):
    assert redact_path(path) == expected


def test_a_token_in_the_query_string_is_refused_and_not_in_the_access_log(live_server_template, tmp_path):
    server = start_live_server(live_server_template, tmp_path)
    try:
        secret = "q" * 40
        response = httpx2.post(f"{server.url}/mcp?access_token={secret}", json={}, timeout=10, trust_env=False)
        assert response.status_code in (400, 401)
        ok = httpx2.get(f"{server.url}/healthz", timeout=10, trust_env=False)
        assert ok.status_code == 200
    finally:
        server.stop()
    access_log = (tmp_path / "daphne.stdout").read_text()
    assert '"GET /healthz" 200' in access_log  # the access log is on, and complete once stopped
    assert "/mcp?access_token=[redacted]" in access_log
    assert secret not in access_log and secret not in server.stderr()
