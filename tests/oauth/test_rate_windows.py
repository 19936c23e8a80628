"""Per-address limits hold in every window of their length, not per calendar window: a burst
just before a window's edge and another just after it get no more than the limit through.

Time is moved, never waited for: the `clock` fixture sets the process's `time.time`, which the
limits read at each request, and the server under test is the real one (Django's test client,
and for the Redis tests a real redis-server). Addresses come from the documentation ranges
(RFC 5737, RFC 3849).
"""

import json
import logging
import time

import httpx2
import pytest

from tests.support.services import RedisServer

# path: (setting, window seconds, how to send one request)
ENDPOINTS = {
    "/authorize": ("MCP_AUTHORIZE_REQUESTS_PER_MINUTE", 60, ("get", {"response_type": "code", "client_id": "x"})),
    "/token": ("MCP_TOKEN_REQUESTS_PER_MINUTE", 60, ("post", {"grant_type": "authorization_code"})),
    "/revoke": ("MCP_REVOKE_REQUESTS_PER_MINUTE", 60, ("post", {"token": "x", "client_id": "y"})),
    "/register": ("MCP_REGISTRATIONS_PER_HOUR", 3600, ("json", {})),  # an invalid registration: nothing stored
    "/register/unknown-client": ("MCP_REGISTRATION_MANAGEMENT_REQUESTS_PER_MINUTE", 60, ("get", {})),
}
ADDRESS = "192.0.2.20"


class Clock:
    """What `time.time()` answers while a test runs; the test moves it."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    # Half a second past a whole minute: whatever a fixed window's edges are, they fall between requests.
    clock = Clock(1_800_000_000.5)
    monkeypatch.setattr(time, "time", clock)
    return clock


def send(client, path: str, address: str = ADDRESS) -> int:
    how, data = ENDPOINTS[path][2]
    if how == "get":
        response = client.get(path, data, REMOTE_ADDR=address)
    elif how == "json":
        response = client.post(path, json.dumps(data), content_type="application/json", REMOTE_ADDR=address)
    else:
        response = client.post(path, data, REMOTE_ADDR=address)
    assert response.status_code != 500, response.content[:300]
    return response.status_code


def busiest(accepted: list[float], window: float) -> int:
    """The most accepted requests in any `window` seconds, (t - window, t]."""
    return max(sum(1 for other in accepted if t - window < other <= t) for t in accepted)


def greedy_client(client, clock: Clock, path: str, limit: int, window: float, *, steps: int = 360) -> list[float]:
    """A client that, every window/120 seconds for three windows, sends requests until one is
    refused: whenever there is room, it takes all of it at once. The times of the accepted ones."""
    accepted = []
    for _ in range(steps):
        for _ in range(limit + 1):
            if send(client, path) == 429:
                break
            accepted.append(clock.now)
        clock.now += window / 120
    return accepted


@pytest.mark.django_db
@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_no_burst_gets_more_than_the_limit_through_in_any_window(client, settings, clock, path):
    setting, window, _ = ENDPOINTS[path]
    setattr(settings, setting, 5)
    accepted = greedy_client(client, clock, path, 5, window)
    assert busiest(accepted, window) == 5, accepted
    # ... and the limit is a rate, not a ban: over three windows the client got three windows' worth.
    assert len(accepted) == 15, accepted


@pytest.mark.django_db
def test_sixty_authorize_requests_at_once_and_then_none_for_a_minute(client, settings, clock):
    """The issue's case, at the default limit of 60 /authorize requests a minute: sixty at the end
    of one fixed window and more at the start of the next got through. Here a burst of sixty is
    followed by a request every quarter second: wherever an edge fell, one after it would pass."""
    assert settings.MCP_AUTHORIZE_REQUESTS_PER_MINUTE == 60
    start = clock.now
    assert [send(client, "/authorize") for _ in range(60)] == [400] * 60  # unknown client: the error page
    while clock.now < start + 59.75:
        clock.now += 0.25
        assert send(client, "/authorize") == 429, f"accepted {clock.now - start} s after the burst"
    clock.now = start + 60  # the burst is a minute old: its places are free again
    assert [send(client, "/authorize") for _ in range(61)] == [400] * 60 + [429]


@pytest.mark.django_db
def test_retry_after_says_when_a_request_is_accepted(client, settings, clock):
    settings.MCP_TOKEN_REQUESTS_PER_MINUTE = 3
    start = clock.now
    for _ in range(3):  # three requests, ten seconds apart
        assert send(client, "/token") != 429
        clock.now += 10
    refused = client.post("/token", {"grant_type": "authorization_code"}, REMOTE_ADDR=ADDRESS)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "30"  # the first request leaves the window 60 s after it was sent
    assert "try again in 30 seconds" in refused.json()["error_description"]
    clock.now = start + 59.5
    assert send(client, "/token") == 429  # not before (and refused requests are not counted)
    clock.now = start + 60
    assert send(client, "/token") != 429
    refused = client.post("/token", {"grant_type": "authorization_code"}, REMOTE_ADDR=ADDRESS)
    assert refused["Retry-After"] == "10"  # the second request (sent at +10 s) is the next to leave


@pytest.mark.django_db
def test_an_ipv6_client_is_counted_by_its_64(client, settings, clock):
    settings.MCP_TOKEN_REQUESTS_PER_MINUTE = 2
    assert send(client, "/token", "2001:db8:0:1::1") != 429
    assert send(client, "/token", "2001:db8:0:1:ffff::2") != 429  # the same /64: the same count
    assert send(client, "/token", "2001:db8:0:1::3") == 429
    assert send(client, "/token", "2001:db8:0:2::1") != 429  # the next /64 is another client
    # An IPv4 client seen through a dual-stack socket is that IPv4 address, not a /64 of them all.
    assert send(client, "/token", "::ffff:192.0.2.30") != 429
    assert send(client, "/token", "192.0.2.30") != 429
    assert send(client, "/token", "::ffff:192.0.2.30") == 429
    assert send(client, "/token", "::ffff:192.0.2.31") != 429


# ---------------------------------------------------------------------------
# In Redis (REDIS_URL): the same windows, shared by every worker
# ---------------------------------------------------------------------------
@pytest.fixture
def redis_server(tmp_path):
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    yield redis
    redis.stop()


@pytest.mark.services
@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/token", "/register"])
def test_in_redis_no_burst_gets_more_than_the_limit_through(client, settings, clock, redis_server, path):
    settings.REDIS_URL = redis_server.url
    setting, window, _ = ENDPOINTS[path]
    setattr(settings, setting, 5)
    accepted = greedy_client(client, clock, path, 5, window)
    assert busiest(accepted, window) == 5, accepted
    assert len(accepted) == 15, accepted


@pytest.mark.services
@pytest.mark.django_db
def test_with_redis_down_the_endpoints_answer_503_and_say_so_once(client, settings, clock, redis_server, caplog):
    settings.REDIS_URL = redis_server.url
    settings.MCP_TOKEN_REQUESTS_PER_MINUTE = 3
    assert send(client, "/token") != 429
    redis_server.stop()
    with caplog.at_level(logging.INFO, logger="oauth_app.ratelimit"):
        for _ in range(3):
            response = client.post("/token", {"grant_type": "authorization_code"}, REMOTE_ADDR=ADDRESS)
            assert response.status_code == 503
            assert response.json()["error"] == "temporarily_unavailable"
            assert response["Retry-After"] == "5"
            page = client.get("/authorize", {"client_id": "x"}, REMOTE_ADDR=ADDRESS)
            assert page.status_code == 503 and page["Retry-After"] == "5"
            clock.now += 1
        clock.now += 5  # past the Retry-After: Redis is asked again, and is still down
        assert send(client, "/token") == 503
        warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
        assert len(warnings) == 1, caplog.text  # one line for the outage, not one per request
        assert "Redis unavailable" in warnings[0].getMessage()

        redis_server.start()  # on the same port: REDIS_URL holds
        clock.now += 5
        assert send(client, "/token") not in (429, 503)
        assert "Redis answers again" in caplog.text
    # The restarted Redis kept nothing (no persistence here): it counts from that request on.
    statuses = [send(client, "/token") for _ in range(3)]
    assert 429 not in statuses[:2] and statuses[2] == 429, statuses


@pytest.mark.live
def test_two_workers_on_one_redis_share_each_addresses_window(live_server_factory, redis_server):
    limit = {"REDIS_URL": redis_server.url, "MCP_TOKEN_REQUESTS_PER_MINUTE": "3"}
    first = live_server_factory(**limit)
    second = live_server_factory(**limit)
    statuses = []
    with httpx2.Client(timeout=15, trust_env=False) as http:
        for server in (first, second, first, second, first):
            statuses.append(http.post(server.url + "/token", data={"grant_type": "authorization_code"}).status_code)
    # Three between them; each alone has seen at most two: only a shared window refuses the last two.
    assert 429 not in statuses[:3] and statuses[3:] == [429, 429], statuses
    for server in (first, second):
        assert "Traceback" not in server.stderr()
