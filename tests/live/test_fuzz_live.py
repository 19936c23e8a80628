"""Property-based fuzzing (hypothesis) of a live daphne server.

Random and mutated input goes to every endpoint a client on the internet can
reach: JSON-RPC messages (real messages of a session with fields removed,
retyped or replaced; random JSON, batches, bytes that are not JSON, deep
nesting, huge ids, unicode) and header sets to `/mcp` (POST, GET, DELETE) and
`/messages`, GETs to `/sse`, form and JSON posts to `/token`, `/register` and
`/revoke`, and mutated queries to `/authorize`, logged in and not.

The properties, for every request:
- never a 5xx status;
- an answer within REQUEST_BOUND seconds (the client's timeout fails the example);
- errors have their protocol's shape: a JSON-RPC error object with an integer
  code on the MCP endpoints (or the guards' `{"error": ...}` refusal), and a
  JSON body with an `error` string on the OAuth endpoints (`/authorize` may
  answer with an HTML page instead: a person's browser is there);
and after each test the server is still up: the daphne process is alive,
`/healthz` answers 200, and a new session's initialize + tools/call add works.

The number of examples per test comes from FUZZ_EXAMPLES (default 150). No
example database is kept (`database=None`), and under CI (`CI` set) the run is
derandomized so a red build replays the same inputs.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import os
import sqlite3
import time
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import httpx2
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.browser import HeadlessBrowser
from tests.support.live_server import GENEROUS_LIMITS, LiveServer, start_live_server
from tests.support.oauth_flow import REDIRECT_URI, pkce_pair
from tests.support.sdk_oauth import redirect_query
from tests.support.wire_client import ACCEPT, LEGACY_PROTOCOL_VERSION, PROTOCOL_VERSION, McpWire

pytestmark = [pytest.mark.live]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
REQUEST_BOUND = 10.0  # seconds: the longest any one answer may take
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a loaded 2-core machine varies; REQUEST_BOUND is the bound that matters
    database=None,  # nothing carried between runs: each run stands on its own
    derandomize=bool(os.environ.get("CI")),
    print_blob=True,  # a failure prints how to replay it (@reproduce_failure)
    # The conftest's autouse fixtures are function-scoped but touch only this process
    # (password hasher, cache); the server under test is the module-scoped one.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
# What the strategies draw instead of secrets, so that a failure report shows no token or cookie;
# Fuzzed.reveal() puts the real values in just before sending. Unchanged by URL and JSON encoding.
VALID, EXPIRED, REFRESH, SPARE, COOKIE = (
    "SECRET-VALID",
    "SECRET-EXPIRED",
    "SECRET-REFRESH",
    "SECRET-SPARE",
    "SECRET-COOKIE",
)
HANDSHAKE_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", LEGACY_PROTOCOL_VERSION)


def _wire_bytes(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------
# The server under fuzz, and what a real client holds for it.
# ---------------------------------------------------------------------------
@dataclass
class Fuzzed:
    server: LiveServer
    http: httpx2.Client
    portal: BlockingPortal
    wire: McpWire
    resource: str  # the RFC 8707 resource tokens are bound to
    client_id: str
    token: str  # valid access token: the fuzz never revokes it
    expired_token: str
    refresh_token: str  # its own grant: rotating or revoking it touches no other token
    spare_token: str  # an access token /revoke may revoke
    session_id: str  # a Streamable HTTP session
    sse_session_id: str  # a legacy session whose stream stays open
    login_cookie: str  # a logged-in browser's Cookie header

    def _secrets(self) -> tuple[tuple[str, str], ...]:
        return (
            (VALID, self.token),
            (EXPIRED, self.expired_token),
            (REFRESH, self.refresh_token),
            (SPARE, self.spare_token),
            (COOKIE, self.login_cookie),
        )

    def reveal(self, data: bytes) -> bytes:
        """`data` with each placeholder replaced by the secret it stands for."""
        for placeholder, secret in self._secrets():
            data = data.replace(placeholder.encode(), secret.encode())
        return data

    def describe(self, response: httpx2.Response) -> str:
        """The request and its answer for a failure report, the secrets put back as placeholders."""
        request = response.request
        text = (
            f"{request.method} {request.url} headers={list(request.headers.items())} "
            f"body={request.content[:500]!r} -> {response.status_code} {response.content[:500]!r}"
        )
        for placeholder, secret in self._secrets():
            text = text.replace(secret, placeholder)
        return text

    def headers(self, pairs) -> list[tuple[str, bytes]]:
        """Header values as the wire carries them: secrets in, latin-1 bytes, no surrounding blanks (h11
        refuses those). Text latin-1 cannot carry (an Mcp-Name copied from a mutated body) goes as its
        UTF-8 bytes, as a client that does not encode it would send it."""
        return [
            (name, self.reveal(_wire_bytes(value) if isinstance(value, str) else value).strip(b" \t"))
            for name, value in pairs
        ]

    def send(self, method: str, url: str, headers=(), content: bytes | None = None, **kwargs) -> httpx2.Response:
        """One request; fails the example on a 5xx or an answer slower than REQUEST_BOUND."""
        started = time.monotonic()
        content = self.reveal(content) if content is not None else None
        response = self.http.request(method, url, headers=self.headers(headers), content=content, **kwargs)
        elapsed = time.monotonic() - started
        assert response.status_code < 500, self.describe(response)
        assert elapsed < REQUEST_BOUND, f"{elapsed:.1f}s: {self.describe(response)}"
        return response

    @property
    def url(self) -> str:
        return self.server.url

    def __repr__(self) -> str:
        # Hypothesis prints its arguments on a failure: no tokens, cookies or passwords there.
        return f"Fuzzed(url={self.url!r})"

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis's printer would list every field
        printer.text(repr(self))

    def new_session(self) -> str:
        return self.portal.call(self.wire.initialize, self.url)

    def assert_up(self) -> None:
        """The process lives, /healthz says so, and a new session can call a tool."""
        assert self.server.process.poll() is None, f"daphne exited with {self.server.process.returncode}"
        health = self.http.get(self.url + "/healthz")
        assert health.status_code == 200, health.text
        session = self.new_session()
        arguments = {"name": "add", "arguments": {"a": 2, "b": 40}}
        reply, _ = self.portal.call(self.wire.call, self.url, session, "tools/call", arguments)
        assert reply["result"]["structuredContent"] == {"result": 42}, reply
        headers = {**self.wire.session_headers(session), "authorization": f"Bearer {self.token}"}
        closed = self.http.delete(self.url + "/mcp", headers=headers)
        assert closed.status_code == 200, closed.text


def _existing_limits() -> dict[str, str]:
    from django.conf import settings as django_settings

    return {name: value for name, value in GENEROUS_LIMITS.items() if hasattr(django_settings, name)}


async def _tokens_through_the_flow(browser: HeadlessBrowser, base: str, client_id: str, resource: str) -> dict:
    """One authorization: the browser logs in (once) and consents; the code is exchanged."""
    verifier, challenge = pkce_pair()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "mcp",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "fuzz",
            "resource": resource,
        }
    )
    code = redirect_query(await browser.authorize(f"{base}/authorize?{query}"))["code"]
    async with httpx2.AsyncClient(timeout=REQUEST_BOUND, trust_env=False) as http:
        answer = await http.post(
            base + "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "client_id": client_id,
                "code_verifier": verifier,
                "resource": resource,
            },
        )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _client_state(server: LiveServer) -> tuple[str, str, list[dict], str]:
    """Register a public client and run three authorizations; the login cookie stays."""
    base = server.url
    async with httpx2.AsyncClient(timeout=REQUEST_BOUND, trust_env=False) as http:
        resource = (await http.get(base + "/.well-known/oauth-protected-resource")).json()["resource"]
        registered = await http.post(
            base + "/register",
            json={
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "none",
                "client_name": "fuzz",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            },
        )
    assert registered.status_code == 201, registered.text
    client_id = registered.json()["client_id"]
    async with HeadlessBrowser(server.username, server.password) as browser:
        grants = [await _tokens_through_the_flow(browser, base, client_id, resource) for _ in range(3)]
        # The browser's session cookie, for /authorize "logged in" (HeadlessBrowser keeps its client private).
        cookie = "; ".join(f"{c.name}={c.value}" for c in browser._http.cookies.jar)
    return resource, client_id, grants, cookie


def _expire(server: LiveServer, access_token: str) -> None:
    """Make an access token expired, in the server's own database (as time would)."""
    db = sqlite3.connect(server.database, timeout=REQUEST_BOUND)
    try:
        with db:  # one transaction, committed
            updated = db.execute(
                "UPDATE oauth2_provider_accesstoken SET expires = '2000-01-01 00:00:00' WHERE token_checksum = ?",
                (hashlib.sha256(access_token.encode()).hexdigest(),),
            ).rowcount
    finally:
        db.close()
    assert updated == 1


async def _drain(stream) -> None:
    """Read the held legacy stream's replies, so the server never writes into a full socket."""
    while True:
        await stream.next_message(timeout=math.inf)


@pytest.fixture(scope="module")
def fuzzed(live_server_template, tmp_path_factory):
    server = start_live_server(live_server_template, tmp_path_factory.mktemp("fuzz-server"), **_existing_limits())
    with ExitStack() as stack:
        stack.callback(server.stop)  # raises if the server died on its own
        portal = stack.enter_context(start_blocking_portal())
        resource, client_id, grants, cookie = portal.call(_client_state, server)
        main, to_expire, spare = grants
        _expire(server, to_expire["access_token"])
        wire = McpWire(main["access_token"])
        stack.callback(portal.call, wire.__aexit__, None, None, None)
        http = stack.enter_context(httpx2.Client(timeout=REQUEST_BOUND, trust_env=False, follow_redirects=False))
        legacy = stack.enter_context(portal.wrap_async_context_manager(wire.legacy_stream(server.url)))
        drain = portal.start_task_soon(_drain, legacy)
        stack.callback(drain.cancel)
        yield Fuzzed(
            server=server,
            http=http,
            portal=portal,
            wire=wire,
            resource=resource,
            client_id=client_id,
            token=main["access_token"],
            expired_token=to_expire["access_token"],
            refresh_token=spare["refresh_token"],
            spare_token=spare["access_token"],
            session_id=portal.call(wire.initialize, server.url),
            sse_session_id=legacy.session_id,
            login_cookie=cookie,
        )


@pytest.fixture(autouse=True)
def _server_survives(fuzzed):
    yield
    fuzzed.assert_up()


# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------
# Header values as h11 lets a client send them: visible latin-1, inner spaces, no CR/LF.
header_text = st.text(
    alphabet=st.characters(codec="latin-1", exclude_categories=("Cc",), exclude_characters="\x7f"), max_size=60
).map(str.strip)
garbage_value = header_text.map(lambda text: text.encode("latin-1"))
huge_ints = st.sampled_from([2**31, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**100, -(10**400)])
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | huge_ints
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["", "\x00", "\ud800", "é" * 50, "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "a" * 5000])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
request_ids = st.one_of(
    st.integers(), huge_ints, st.text(max_size=40), st.floats(), st.none(), st.booleans(), json_values
)


def _nested(depth: int, opener: bytes, closer: bytes, inner: bytes = b"") -> bytes:
    return opener * depth + inner + closer * depth


# Far deeper than any JSON parser recurses by default: arrays, objects, and inside a real message.
deep_nesting = st.one_of(
    st.integers(min_value=500, max_value=200_000).map(lambda n: _nested(n, b"[", b"]")),
    st.integers(min_value=500, max_value=100_000).map(lambda n: _nested(n, b'{"a":', b"}", b"0")),
    st.integers(min_value=500, max_value=100_000).map(
        lambda n: b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":' + _nested(n, b"[", b"]") + b"}}"
    ),
    # Shallow enough to parse, deep enough to strain whatever walks the arguments next.
    st.integers(min_value=100, max_value=990).map(
        lambda n: (
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":'
            + _nested(n, b"[", b"]")
            + b',"b":1}}}'
        )
    ),
)


def _message(method: str, params: dict | None = None, request_id: int | None = 1) -> dict:
    message = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        message["id"] = request_id
    if params is not None:
        message["params"] = params
    return message


# What clients send during a session (the SDK's client and the conformance suite's).
REAL_MESSAGES = [
    _message(
        "initialize",
        {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {"roots": {"listChanged": True}, "sampling": {}},
            "clientInfo": {"name": "fuzz", "version": "1"},
        },
        0,
    ),
    _message("notifications/initialized", request_id=None),
    _message("ping"),
    _message("tools/list", {}),
    _message("tools/list", {"cursor": "abc"}),
    _message("tools/call", {"name": "add", "arguments": {"a": 2, "b": 40}}),
    _message("tools/call", {"name": "calculate", "arguments": {"expression": "2 ** 10 / (3 - 1)"}}),
    _message("tools/call", {"name": "divide", "arguments": {"a": 1, "b": 0}}),
    _message("tools/call", {"name": "power", "arguments": {"base": 10, "exponent": 308}}),
    _message("tools/call", {"name": "sqrt", "arguments": {"x": 2}}),
    _message("tools/call", {"name": "whoami", "arguments": {}, "_meta": {"progressToken": 7}}),
    _message("resources/list", {}),
    _message("resources/templates/list", {}),
    _message("resources/read", {"uri": "file:///etc/passwd"}),
    _message("resources/subscribe", {"uri": "test://x"}),
    _message("prompts/list", {}),
    _message("prompts/get", {"name": "x", "arguments": {}}),
    _message("logging/setLevel", {"level": "debug"}),
    _message(
        "completion/complete", {"ref": {"type": "ref/prompt", "name": "x"}, "argument": {"name": "a", "value": ""}}
    ),
    _message("server/discover", {}),
    _message("notifications/cancelled", {"requestId": 1, "reason": "fuzz"}, None),
    _message("notifications/progress", {"progressToken": 1, "progress": 0.5}, None),
    _message("notifications/roots/list_changed", request_id=None),
    {"jsonrpc": "2.0", "id": 1, "result": {}},  # an answer to a server request that was never made
    {"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "no"}},
]


STATELESS_VERSION = "2026-07-28"
STATELESS_META = {
    "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
    "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}, "sampling": {}},
}


def _stateless(message: dict) -> dict:
    """A message of the stateless era (2026-07-28): the same, with the _meta envelope in its params."""
    stamped = copy.deepcopy(message)
    params = stamped.setdefault("params", {})
    params["_meta"] = {**params.get("_meta", {}), **STATELESS_META}
    return stamped


# What 2026-07-28 clients send: every request self-contained, plus the methods only this era has.
STATELESS_MESSAGES = [
    _stateless(message) for message in REAL_MESSAGES if "method" in message and message["method"] != "initialize"
] + [
    _stateless(_message("subscriptions/listen", {"notifications": {"toolsListChanged": True}})),
    _stateless(_message("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}, "requestState": "forged"})),
    _stateless(
        _message("tools/call", {"name": "whoami", "arguments": {}, "inputResponses": {"x": {"action": "accept"}}})
    ),
]


def _paths(value, prefix=()):
    """Every (path) to a key or index in a JSON value, outermost first."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield (*prefix, index)
            yield from _paths(inner, (*prefix, index))


@st.composite
def mutated(draw, bases=REAL_MESSAGES):
    """A real message with one to three fields removed, retyped or replaced, or keys added."""
    message = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = list(_paths(message))
        if not paths or not isinstance(message, dict):
            break
        *parent_path, key = draw(st.sampled_from(paths))
        parent = message
        for step in parent_path:
            parent = parent[step]
        operation = draw(st.sampled_from(["remove", "replace", "replace", "add", "id"]))
        if operation == "remove":
            del parent[key]
        elif operation == "replace":
            parent[key] = draw(json_values)
        elif operation == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(json_values)
        else:
            message["id"] = draw(request_ids)
    return message


@st.composite
def json_bytes(draw, values):
    """`values` as a JSON body: ASCII-escaped or raw UTF-8, lone surrogates passed through as bytes."""
    text = json.dumps(draw(values), ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


jsonrpc_bodies = st.one_of(
    json_bytes(st.sampled_from(REAL_MESSAGES)),
    json_bytes(mutated()),
    json_bytes(mutated()),
    json_bytes(json_values),
    json_bytes(st.lists(st.sampled_from(REAL_MESSAGES) | mutated(), min_size=0, max_size=3)),  # batches
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
    deep_nesting,
)


def _optional(*choices):
    """None (header left out), one of `choices`, or garbage."""
    return st.one_of(st.none(), st.sampled_from(choices), garbage_value)


@st.composite
def authorization(draw, valid_weight: int = 4):
    choice = draw(
        st.sampled_from(
            ["valid"] * valid_weight + ["expired", "none", "garbage", "bearer-garbage", "basic", "empty", "lower"]
        )
    )
    return {
        "valid": f"Bearer {VALID}",
        "expired": f"Bearer {EXPIRED}",
        "none": None,
        "garbage": draw(header_text),
        "bearer-garbage": "Bearer " + draw(header_text),
        "basic": "Basic " + draw(header_text),
        "empty": "Bearer ",
        "lower": f"bearer {VALID}",
    }[choice]


def _session_choice(valid: str):
    return st.one_of(
        st.just(valid),
        st.just(valid),
        st.none(),
        header_text,
        st.uuids().map(lambda u: u.hex),
        st.just(valid + "x"),
        st.just(valid.upper()),
    )


EXTRA_HEADER_NAMES = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "last-event-id",
    "cookie",
    "user-agent",
    "accept-encoding",
    "accept-language",
    "x-real-ip",
    "forwarded",
    "mcp-session-id",
]
extra_headers = st.lists(
    st.tuples(st.sampled_from(EXTRA_HEADER_NAMES) | st.from_regex(r"\Ax-[a-z0-9-]{1,20}\Z"), garbage_value), max_size=3
)


@st.composite
def mcp_headers(
    draw,
    fuzzed: Fuzzed,
    session_id: str,
    accept=(ACCEPT, "application/json", "text/event-stream", "*/*", "application/*"),
):
    """The headers a real client sends, as they are (half the time, so that the bodies get past
    the checks on headers) or with some of them left out, changed or garbage; plus a few others."""
    headers = {
        "accept": accept[0],
        "content-type": "application/json",
        "mcp-protocol-version": PROTOCOL_VERSION,
        "mcp-session-id": session_id,
        "authorization": f"Bearer {VALID}",
        "origin": None,
        "host": None,
    }
    changes = {
        "accept": _optional(*accept),
        "content-type": _optional(
            "application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded"
        ),
        "mcp-protocol-version": _optional(*HANDSHAKE_VERSIONS, "2026-07-28", "1999-01-01"),
        "mcp-session-id": _session_choice(session_id),
        "authorization": authorization(valid_weight=1),
        "origin": _optional(fuzzed.url, "https://evil.example", "null", "http://localhost"),
        "host": st.sampled_from(["evil.example", "localhost", "", "127.0.0.1"]) | header_text,
    }
    changed = draw(
        st.just(()) | st.lists(st.sampled_from(sorted(changes)), min_size=1, max_size=len(changes), unique=True)
    )
    for name in changed:
        headers[name] = draw(changes[name])
    pairs = [(name, value) for name, value in headers.items() if value is not None]
    return pairs + draw(extra_headers)


@st.composite
def stateless_headers(draw, fuzzed: Fuzzed, message):
    """The headers a 2026-07-28 client sends with `message` (Mcp-Method, Mcp-Name, the version),
    as they are half the time, or contradicting the body, missing, repeated or garbage."""
    method = message.get("method") if isinstance(message, dict) else None
    params = message.get("params") if isinstance(message, dict) else None
    name = params.get("name", params.get("uri")) if isinstance(params, dict) else None
    headers = [
        ("accept", ACCEPT),
        ("content-type", "application/json"),
        ("authorization", f"Bearer {VALID}"),
        ("mcp-protocol-version", STATELESS_VERSION),
    ]
    if isinstance(method, str):
        headers.append(("mcp-method", method))
    if isinstance(name, str):
        headers.append(("mcp-name", name))
    if draw(st.booleans()):
        return headers
    routing = ["mcp-protocol-version", "mcp-method", "mcp-name"]
    for header in draw(st.lists(st.sampled_from(routing), min_size=1, max_size=3, unique=True)):
        operation = draw(st.sampled_from(["remove", "replace", "repeat"]))
        current = [value for key, value in headers if key == header]
        headers = [(key, value) for key, value in headers if key != header]
        if operation == "replace":
            choices = [*HANDSHAKE_VERSIONS, STATELESS_VERSION, "v999"] if header == "mcp-protocol-version" else []
            headers.append((header, draw(st.sampled_from(choices) | header_text if choices else header_text)))
        elif operation == "repeat" and current:
            headers += [(header, current[0]), (header, draw(header_text))]
    return headers + draw(extra_headers)


# ---------------------------------------------------------------------------
# Checks on each answer
# ---------------------------------------------------------------------------
def _is_jsonrpc_error(body) -> bool:
    return (
        isinstance(body, dict)
        and body.get("jsonrpc") == "2.0"
        and "id" in body
        and isinstance(body.get("error"), dict)
        and isinstance(body["error"].get("code"), int)
        and isinstance(body["error"].get("message"), str)
    )


def _is_refusal(body) -> bool:
    """The guards' (and OAuth's) error shape."""
    return isinstance(body, dict) and isinstance(body.get("error"), str)


def _json_body(fuzzed: Fuzzed, response: httpx2.Response):
    assert response.headers.get("content-type", "").startswith("application/json"), fuzzed.describe(response)
    try:
        return response.json()
    except ValueError:
        raise AssertionError(f"not JSON: {fuzzed.describe(response)}") from None


def _check_mcp_answer(fuzzed: Fuzzed, response: httpx2.Response) -> None:
    """An error is a JSON-RPC error object (or the guards' refusal); a JSON 200 is one JSON-RPC reply."""
    if response.request.method == "HEAD":
        return  # the answer to HEAD has no body to check
    if response.status_code >= 400:
        body = _json_body(fuzzed, response)
        assert _is_jsonrpc_error(body) or _is_refusal(body), fuzzed.describe(response)
    elif response.status_code == 200 and response.headers.get("content-type", "").startswith("application/json"):
        body = _json_body(fuzzed, response)
        assert body.get("jsonrpc") == "2.0" and ("result" in body) != ("error" in body), fuzzed.describe(response)
        if "error" in body:
            assert _is_jsonrpc_error(body), fuzzed.describe(response)


def _check_oauth_answer(fuzzed: Fuzzed, response: httpx2.Response, *, page_allowed: bool = False) -> None:
    """A 4xx is a JSON body with an `error` string, or, where a browser may be, a page."""
    if 400 <= response.status_code < 500 and response.request.method != "HEAD":
        if page_allowed and response.headers.get("content-type", "").startswith("text/html"):
            return
        assert _is_refusal(_json_body(fuzzed, response)), fuzzed.describe(response)


# ---------------------------------------------------------------------------
# /mcp and /messages
# ---------------------------------------------------------------------------
@FUZZ
@given(data=st.data(), body=jsonrpc_bodies)
def test_mcp_post(fuzzed, data, body):
    headers = data.draw(mcp_headers(fuzzed, fuzzed.session_id))
    response = fuzzed.send("POST", fuzzed.url + "/mcp", content=body, headers=headers)
    _check_mcp_answer(fuzzed, response)


stateless_bodies = st.one_of(
    st.sampled_from(STATELESS_MESSAGES),
    mutated(STATELESS_MESSAGES),
    mutated(STATELESS_MESSAGES),
)


@FUZZ
@given(data=st.data(), message=stateless_bodies, ascii_only=st.booleans())
def test_mcp_post_stateless(fuzzed, data, message, ascii_only):
    """The stateless era's path: its envelope, its headers, and every way they can disagree."""
    headers = data.draw(stateless_headers(fuzzed, message))
    body = json.dumps(message, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    started = time.monotonic()
    # A subscriptions/listen stream never ends by itself: its first event is enough to judge it.
    with fuzzed.http.stream("POST", fuzzed.url + "/mcp", headers=fuzzed.headers(headers), content=body) as response:
        assert response.status_code < 500, fuzzed.describe(response)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            assert response.status_code == 200, fuzzed.describe(response)
            _first_sse_event(response)
        else:
            response.read()
            _check_mcp_answer(fuzzed, response)
    assert time.monotonic() - started < REQUEST_BOUND, fuzzed.describe(response)


@FUZZ
@given(
    data=st.data(),
    method=st.sampled_from(["GET", "GET", "DELETE", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"]),
    last_event_id=st.none() | header_text | st.just("0.0") | st.from_regex(r"\A[0-9]{1,20}\.[0-9]{1,20}\Z"),
)
def test_mcp_get_and_delete(fuzzed, data, method, last_event_id):
    # DELETE ends the session it names: a fresh one each time, so the shared session lives on.
    session_id = fuzzed.new_session() if method == "DELETE" else fuzzed.session_id
    headers = data.draw(
        mcp_headers(fuzzed, session_id, accept=("text/event-stream", ACCEPT, "application/json", "*/*"))
    )
    if last_event_id is not None:
        headers.append(("last-event-id", last_event_id.encode("latin-1")))
    started = time.monotonic()
    with fuzzed.http.stream(method, fuzzed.url + "/mcp", headers=fuzzed.headers(headers)) as response:
        assert response.status_code < 500, fuzzed.describe(response)
        if response.status_code == 200 and method == "GET":
            # The session's server-to-client stream: open, and that is all it needs to show.
            assert response.headers["content-type"].startswith("text/event-stream"), fuzzed.describe(response)
        else:
            response.read()
            _check_mcp_answer(fuzzed, response)
    assert time.monotonic() - started < REQUEST_BOUND


@FUZZ
@given(
    data=st.data(),
    body=jsonrpc_bodies,
    method=st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE"]),
    extra_query=st.lists(
        st.tuples(st.sampled_from(["sessionId", "session_id", "x"]) | st.text(max_size=8), st.text(max_size=20)),
        max_size=2,
    ),
)
def test_messages_post(fuzzed, data, body, method, extra_query):
    session_id = data.draw(_session_choice(fuzzed.sse_session_id))
    query = ([("sessionId", session_id)] if session_id is not None else []) + extra_query
    url = f"{fuzzed.url}/messages?{urlencode(query, quote_via=quote)}"
    headers = [pair for pair in data.draw(mcp_headers(fuzzed, "unused")) if pair[0] != "mcp-session-id"]
    response = fuzzed.send(method, url, content=body, headers=headers)
    if response.status_code == 202:
        assert response.content == b"Accepted"
    else:
        _check_mcp_answer(fuzzed, response)


def _first_sse_event(response: httpx2.Response) -> tuple[str, str]:
    """The (event, data) of the stream's first event; comments are skipped."""
    event, data = "message", []
    for line in response.iter_lines():
        if line == "" and data:
            return event, "\n".join(data)
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    raise AssertionError("the stream ended before its first event")


@FUZZ
@given(
    data=st.data(),
    method=st.sampled_from(["GET"] * 6 + ["POST", "DELETE", "HEAD"]),
    query=st.none() | st.text(max_size=40),
)
def test_sse_get(fuzzed, data, method, query):
    headers = data.draw(
        mcp_headers(fuzzed, fuzzed.sse_session_id, accept=("text/event-stream", "*/*", ACCEPT, "application/json"))
    )
    url = fuzzed.url + "/sse" + ("" if query is None else "?" + quote(query, safe="=&"))
    started = time.monotonic()
    with fuzzed.http.stream(method, url, headers=fuzzed.headers(headers)) as response:
        assert response.status_code < 500, fuzzed.describe(response)
        if response.status_code == 200 and method == "GET":
            event, endpoint = _first_sse_event(response)  # read only the first event, then hang up
            assert event == "endpoint" and endpoint.startswith("/messages?sessionId="), (event, endpoint)
        else:
            response.read()
            _check_mcp_answer(fuzzed, response)
    assert time.monotonic() - started < REQUEST_BOUND


# ---------------------------------------------------------------------------
# OAuth endpoints
# ---------------------------------------------------------------------------
def _form_field(*choices):
    return st.one_of(st.none(), st.sampled_from(choices), st.text(max_size=40))


@st.composite
def oauth_body(draw, fields: dict):
    """`fields` (name -> strategy) as a form post mostly, sometimes as JSON or bytes, plus extra fields."""
    form = {name: value for name, strategy in fields.items() if (value := draw(strategy)) is not None}
    form.update(draw(st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=2)))
    encoding = draw(st.sampled_from(["form"] * 5 + ["form-repeated", "json", "bytes", "deep"]))
    form_type = "application/x-www-form-urlencoded"
    if encoding == "form":
        content, content_type = urlencode(form).encode(), form_type
    elif encoding == "form-repeated":  # each field twice, with different values
        pairs = [(name, value) for name, value in form.items()] + [(name, draw(st.text(max_size=10))) for name in form]
        content, content_type = urlencode(pairs).encode(), form_type
    elif encoding == "json":
        content, content_type = draw(json_bytes(st.just(form) | json_values)), "application/json"
    elif encoding == "bytes":
        content, content_type = draw(st.binary(max_size=200)), form_type
    else:
        content, content_type = draw(deep_nesting), draw(st.sampled_from([form_type, "application/json"]))
    content_type = draw(st.one_of(st.just(content_type), st.just(content_type), st.none(), header_text))
    headers = [("content-type", content_type)] if content_type is not None else []
    basic = draw(
        st.none() | st.none() | header_text | st.binary(max_size=30).map(lambda b: base64.b64encode(b).decode())
    )
    if basic is not None:
        headers.append(("authorization", "Basic " + basic))
    return content, headers


@FUZZ
@given(data=st.data())
def test_token_post(fuzzed, data):
    content, headers = data.draw(
        oauth_body(
            {
                "grant_type": _form_field(
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                    "password",
                    "urn:ietf:params:oauth:grant-type:device_code",
                    "implicit",
                ),
                "code": _form_field("x" * 30),
                "refresh_token": _form_field(REFRESH, REFRESH, VALID),
                "client_id": _form_field(fuzzed.client_id, fuzzed.client_id, fuzzed.client_id + "x"),
                "client_secret": _form_field("secret"),
                "code_verifier": _form_field("v" * 43, "v" * 200),
                "redirect_uri": _form_field(REDIRECT_URI, "http://evil.example/cb"),
                "resource": _form_field(fuzzed.resource, fuzzed.url + "/mcp", "https://evil.example"),
                "scope": _form_field("mcp", "mcp admin", "openid"),
            }
        )
    )
    response = fuzzed.send("POST", fuzzed.url + "/token", content=content, headers=headers)
    _check_oauth_answer(fuzzed, response)
    if response.status_code == 200:
        assert response.json()["token_type"] == "Bearer", fuzzed.describe(response)


REGISTRATION = {
    "redirect_uris": [REDIRECT_URI],
    "token_endpoint_auth_method": "none",
    "client_name": "fuzz",
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "scope": "mcp",
    "client_uri": "https://example.com",
    "software_id": "fuzz",
    "software_version": "1",
}
registration_bodies = st.one_of(
    json_bytes(mutated([REGISTRATION])),
    json_bytes(mutated([REGISTRATION])),
    json_bytes(st.just(REGISTRATION)),
    json_bytes(json_values),
    st.binary(max_size=300),
    deep_nesting,
)


@FUZZ
@given(
    body=registration_bodies,
    content_type=st.sampled_from(["application/json"] * 4 + ["text/plain", "application/x-www-form-urlencoded"])
    | st.none()
    | header_text,
    authorization=st.none() | st.none() | header_text,
)
def test_register_post(fuzzed, body, content_type, authorization):
    headers = [
        (name, value)
        for name, value in (("content-type", content_type), ("authorization", authorization))
        if value is not None
    ]
    response = fuzzed.send("POST", fuzzed.url + "/register", content=body, headers=headers)
    _check_oauth_answer(fuzzed, response)
    if response.status_code == 201:
        assert isinstance(response.json()["client_id"], str), fuzzed.describe(response)


@FUZZ
@given(data=st.data())
def test_revoke_post(fuzzed, data):
    # Never the module's own access token: revoking it would end the fuzzing of /mcp.
    content, headers = data.draw(
        oauth_body(
            {
                "token": _form_field(SPARE, REFRESH, EXPIRED, "t" * 5000),
                "token_type_hint": _form_field("access_token", "refresh_token", "id_token"),
                "client_id": _form_field(fuzzed.client_id, fuzzed.client_id, "nobody"),
                "client_secret": _form_field("secret"),
            }
        )
    )
    response = fuzzed.send("POST", fuzzed.url + "/revoke", content=content, headers=headers)
    _check_oauth_answer(fuzzed, response)


@st.composite
def authorize_query(draw, fuzzed: Fuzzed) -> list[tuple[str, str]]:
    """A valid authorization request with parameters dropped, replaced, repeated or added."""
    params = {
        "response_type": "code",
        "client_id": fuzzed.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "mcp",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        "state": "s",
        "resource": fuzzed.resource,
    }
    pairs = []
    for name, value in params.items():
        fate = draw(st.sampled_from(["keep"] * 5 + ["drop", "replace", "repeat"]))
        if fate == "keep":
            pairs.append((name, value))
        elif fate == "replace":
            pairs.append(
                (
                    name,
                    draw(
                        st.sampled_from(["", "token", "plain", "openid", "http://evil.example/cb", "nobody"])
                        | st.text(max_size=60)
                    ),
                )
            )
        elif fate == "repeat":
            pairs += [(name, value), (name, draw(st.text(max_size=20)))]
    return pairs + draw(st.lists(st.tuples(st.text(max_size=10), st.text(max_size=20)), max_size=2))


@FUZZ
@given(data=st.data(), logged_in=st.booleans(), method=st.sampled_from(["GET"] * 8 + ["POST", "HEAD"]))
def test_authorize(fuzzed, data, logged_in, method):
    query = urlencode(data.draw(authorize_query(fuzzed)), quote_via=quote)
    headers = [("cookie", COOKIE)] if logged_in else []
    kwargs = {}
    if method == "POST":  # no CSRF token: refused, never a crash
        kwargs["data"] = data.draw(
            st.dictionaries(
                st.sampled_from(["request_id", "decision", "allow"]) | st.text(max_size=8),
                st.text(max_size=20),
                max_size=3,
            )
        )
    response = fuzzed.send(method, f"{fuzzed.url}/authorize?{query}", headers=headers, **kwargs)
    _check_oauth_answer(fuzzed, response, page_allowed=True)
    if response.status_code in (301, 302, 303):
        assert response.headers.get("location"), fuzzed.describe(response)
