"""`make soak`: many sessions for a long time against one worker; errors, memory and FDs over time.

Starts this server (daphne, one worker, its own SQLite database in a temporary
directory, generous OAuth rate limits), gets every virtual client real tokens
through the OAuth flow (registration, login, consent, code exchange), then
runs `--sessions` virtual clients for `--minutes`: half over Streamable HTTP,
half over the legacy HTTP+SSE transport. Each one, one thing at a time:

- calls a tool (add, calculate, whoami, in turn), checks the answer, and
  waits a random think time (mean `--think` seconds);
- ends its session after a random lifetime (mean `--session-seconds`) and
  opens a new one (Streamable HTTP: DELETE; legacy: the stream is closed);
- refreshes its token about every `--refresh-seconds` (refresh_token grant
  at /token, with rotation) and uses the new access token from then on;
- (Streamable HTTP, `--resume-fraction` of the sessions) opens the session's
  GET stream, drops it, waits the `retry` the server asked for and resumes it
  with Last-Event-ID, then holds it until the session ends.

Every `--sample-seconds` it reads the server's resident memory (VmRSS) and
open file descriptors from /proc, and counts calls, refreshes, reconnects and
errors. With `--tracemalloc FRAMES` the server traces its allocations
(`mcpsite/memory_trace.py`) and takes a snapshot after `--warmup-minutes` of load
and one at its end; the report lists what grew between them, line by line.
The report (bench/soak_report.py) goes to bench/results/soak-<time>.md, .json and
.png; it lists each distinct error with its count, and says whether memory and
FDs level off. Exit status 1 on any error.

    python bench/soak.py [--minutes 10] [--sessions 200] [--think 1.0] [--sample-seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # run as a script from anywhere: `bench` and `tests` import

from bench import servers, soak_report
from bench.clients import POST, CallFailed, HTTPClient, SSEClient, _reply_in
from bench.http11 import Connection
from bench.load import OPEN_CONCURRENCY, cpu_seconds, percentile, rss_kib
from tests.support.live_server import GENEROUS_LIMITS

SERVER = "ours-daphne"
SERVER_CPUS, LOAD_CPUS = {0}, {1}  # as bench/run.py: the server and the load on a core each
OP_TIMEOUT = 30.0  # seconds for any one step of a client (a call, an open, a refresh)
RETRY_AFTER_FAILURE = 1.0  # seconds a client backs off before opening a new session after an error
MINT_BROWSERS = 4  # logged-in browsers minting the clients' grants side by side
FORM = b"content-type: application/x-www-form-urlencoded\r\n"
_OPAQUE = re.compile(r"[A-Za-z0-9_.-]{20,}")  # session ids and tokens: one error, not one per session


# -- tokens through the real OAuth flow --------------------------------------------------------
async def mint_grants(base: str, username: str, password: str, count: int) -> tuple[str, list[dict]]:
    """A registered public client and `count` grants of it (access and refresh token each), obtained
    as a client would: registration, then per grant a browser's login and consent and the code exchange."""
    import httpx2

    from tests.support.browser import HeadlessBrowser
    from tests.support.oauth_flow import REDIRECT_URI, pkce_pair
    from tests.support.sdk_oauth import redirect_query

    async with httpx2.AsyncClient(timeout=OP_TIMEOUT, trust_env=False) as http:
        resource = (await http.get(base + "/.well-known/oauth-protected-resource")).json()["resource"]
        registered = await http.post(
            base + "/register",
            json={
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "none",
                "client_name": "soak",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            },
        )
        if registered.status_code != 201:
            raise RuntimeError(f"registration failed: {registered.status_code} {registered.text[:300]}")
        client_id = registered.json()["client_id"]

        async def grant(browser: HeadlessBrowser) -> dict:
            verifier, challenge = pkce_pair()
            query = urlencode(
                {
                    "response_type": "code",
                    "client_id": client_id,
                    "redirect_uri": REDIRECT_URI,
                    "scope": "mcp",
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                    "state": "soak",
                    "resource": resource,
                }
            )
            code = redirect_query(await browser.authorize(f"{base}/authorize?{query}"))["code"]
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
            if answer.status_code != 200:
                raise RuntimeError(f"code exchange failed: {answer.status_code} {answer.text[:300]}")
            return answer.json()

        async def grants_of_one_browser(share: int) -> list[dict]:
            # One browser's consents in turn: its pending requests live in one Django session.
            async with HeadlessBrowser(username, password, timeout=OP_TIMEOUT) as browser:
                return [await grant(browser) for _ in range(share)]

        shares = [count // MINT_BROWSERS + (i < count % MINT_BROWSERS) for i in range(MINT_BROWSERS)]
        batches = await asyncio.gather(*(grants_of_one_browser(share) for share in shares if share))
    return client_id, [tokens for batch in batches for tokens in batch]


# -- the virtual clients -----------------------------------------------------------------------
class TokenHolder:
    """What a client swaps in after a refresh: its access token inside its request headers."""

    def use_token(self, old: str, new: str) -> None:
        for name in ("base", "headers"):
            if hasattr(self, name):
                setattr(self, name, getattr(self, name).replace(old.encode(), new.encode()))


class StreamableClient(TokenHolder, HTTPClient):
    resumed: Connection | None = None

    async def call_tool(self, body: bytes) -> bytes:
        answer = await self.conn.request(POST, self.path, self.headers, body)
        if answer.status != 200:
            raise CallFailed(f"tools/call: {answer.status} {answer.body[:200]!r}")
        return _reply_in(answer.headers.get(b"content-type", b""), answer.body)

    async def drop_and_resume(self) -> None:
        """GET the session's stream, drop it after its priming event, wait the `retry` it named, and
        reconnect with Last-Event-ID; the resumed stream stays open until the session ends."""
        stream = await self._open_stream(b"")
        event_id, retry_ms = _priming_fields(await stream.read_chunk())
        stream.close()
        await asyncio.sleep(retry_ms / 1000)  # the server's `retry:` before reconnecting, as clients do
        self.resumed = await self._open_stream(b"last-event-id: %s\r\n" % event_id.encode())

    async def _open_stream(self, extra: bytes) -> Connection:
        stream = await Connection.open(self.host, self.port)
        stream.send(b"GET", self.path, self.headers.replace(b"accept: application/json, ", b"accept: ") + extra)
        status, _headers = await stream.read_head()
        if status != 200:
            stream.close()
            raise CallFailed(f"GET /mcp{' (resume)' if extra else ''}: {status}")
        return stream

    async def close(self, end_session: bool = True) -> None:
        if self.resumed is not None:
            self.resumed.close()
        try:
            answer = await self.conn.request(b"DELETE", self.path, self.headers)
            if answer.status != 200:
                raise CallFailed(f"DELETE /mcp: {answer.status} {answer.body[:200]!r}")
        finally:
            self.conn.close()


class LegacyClient(TokenHolder, SSEClient):
    async def call_tool(self, body: bytes) -> bytes:
        if self.reader.done():
            raise ConnectionError("the stream ended")
        self.waiting = asyncio.get_running_loop().create_future()
        answer = await self.post.request(POST, self.endpoint, self.headers, body)
        if answer.status not in (200, 202):
            raise CallFailed(f"POST /messages: {answer.status} {answer.body[:200]!r}")
        return await self.waiting


def _priming_fields(chunk: bytes | None) -> tuple[str, int]:
    """The `id` and `retry` of a priming event (`id: ...\\ndata: \\nretry: ...`)."""
    fields = dict(line.split(": ", 1) for line in (chunk or b"").decode().splitlines() if ": " in line)
    if "id" not in fields or "retry" not in fields:
        raise CallFailed(f"GET /mcp: the first event is no priming event: {chunk!r}")
    return fields["id"], int(fields["retry"])


# Tool calls in turn; each answer is checked, not just its status.
def _tool_call(turn: int, request_id: int, username: str) -> tuple[bytes, callable]:
    name, arguments, check = [
        ("add", {"a": turn, "b": 2}, lambda out: out == {"result": turn + 2}),
        ("calculate", {"expression": f"{turn} * 3 - 1"}, lambda out: out == {"result": turn * 3 - 1}),
        ("whoami", {}, lambda out: out["user"]["username"] == username),
    ][turn % 3]
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
    return json.dumps(body).encode(), lambda reply: _checked(name, reply, check)


def _checked(name: str, reply: bytes, check) -> None:
    message = json.loads(reply)
    result = message.get("result")
    if result is None or result.get("isError") or not check(result.get("structuredContent") or {}):
        raise CallFailed(f"tools/call {name}: unexpected answer {reply[:200]!r}")


@dataclass
class Totals:
    calls: int = 0
    refreshes: int = 0
    reconnects: int = 0
    resumes: int = 0
    sessions_open: int = 0
    errors: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # since the last sample

    def error(self, what: str, exc: BaseException) -> None:
        text = f"{what}: {type(exc).__name__}: {exc}" if str(exc) else f"{what}: {type(exc).__name__}"
        self.errors[_OPAQUE.sub("…", text)[:300]] += 1


@dataclass
class Grant:
    access: str
    refresh: str


class Soak:
    def __init__(self, args, host: str, port: int, client_id: str, username: str):
        self.args, self.host, self.port = args, host, port
        self.client_id, self.username = client_id, username
        self.totals = Totals()
        self.stop = asyncio.Event()
        self.open_gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def run_user(self, index: int, transport: str, grant: Grant) -> None:
        rng = random.Random(index)  # each client's schedule is the same from run to run
        args, totals, clock = self.args, self.totals, time.monotonic
        next_refresh = clock() + rng.uniform(0, 1) * args.refresh_seconds
        lifetime = rng.uniform(0, 1) * args.session_seconds  # the first sessions end spread out
        turn = index
        while not self.stop.is_set():
            client = (StreamableClient if transport == "http" else LegacyClient)(self.host, self.port, grant.access)
            try:
                async with self.open_gate:
                    await asyncio.wait_for(client.open(), OP_TIMEOUT)
                totals.sessions_open += 1
            except Exception as exc:
                totals.error(f"open {transport}", exc)
                await self._close_quietly(client)
                await self._pause(RETRY_AFTER_FAILURE)
                continue
            session_ends = clock() + lifetime
            lifetime = rng.uniform(0.5, 1.5) * args.session_seconds
            try:
                if transport == "http" and rng.random() < args.resume_fraction:
                    await asyncio.wait_for(client.drop_and_resume(), OP_TIMEOUT)
                    totals.resumes += 1
                while not self.stop.is_set() and clock() < session_ends:
                    if clock() >= next_refresh:
                        await asyncio.wait_for(self.refresh(grant, client), OP_TIMEOUT)
                        next_refresh = clock() + rng.uniform(0.5, 1.5) * args.refresh_seconds
                    turn += 1
                    body, check = _tool_call(turn, turn, self.username)
                    started = clock()
                    check(await asyncio.wait_for(client.call_tool(body), OP_TIMEOUT))
                    totals.latencies.append(clock() - started)
                    totals.calls += 1
                    await self._pause(rng.uniform(0, 2 * args.think))
            except Exception as exc:
                totals.error(f"{transport} session", exc)
            totals.sessions_open -= 1
            try:
                await asyncio.wait_for(client.close(), OP_TIMEOUT)
                totals.reconnects += not self.stop.is_set()
            except Exception as exc:
                totals.error(f"close {transport}", exc)

    async def refresh(self, grant: Grant, client: TokenHolder) -> None:
        """The refresh_token grant (with rotation); the new access token replaces the old one."""
        conn = await Connection.open(self.host, self.port)
        try:
            body = urlencode(
                {"grant_type": "refresh_token", "refresh_token": grant.refresh, "client_id": self.client_id}
            )
            answer = await conn.request(POST, b"/token", FORM, body.encode())
        finally:
            conn.close()
        if answer.status != 200:
            raise CallFailed(f"refresh: {answer.status} {answer.body[:200]!r}")
        tokens = json.loads(answer.body)
        if tokens["refresh_token"] == grant.refresh or tokens["access_token"] == grant.access:
            raise CallFailed("refresh: the tokens were not rotated")
        client.use_token(grant.access, tokens["access_token"])
        grant.access, grant.refresh = tokens["access_token"], tokens["refresh_token"]
        self.totals.refreshes += 1

    async def _pause(self, seconds: float) -> None:
        """Think time, cut short when the run ends."""
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except TimeoutError:
            pass

    @staticmethod
    async def _close_quietly(client) -> None:
        for conn in (getattr(client, "conn", None), getattr(client, "stream", None), getattr(client, "post", None)):
            if conn is not None:
                conn.close()
        if getattr(client, "reader", None) is not None:
            client.reader.cancel()


# -- sampling the server from /proc ------------------------------------------------------------
def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Sampler:
    def __init__(self, pid: int, totals: Totals, started: float):
        self.pid, self.totals, self.started = pid, totals, started
        self.samples: list[dict] = []
        self._last = (started, 0, 0, 0, 0, cpu_seconds([pid]), 0)

    def take(self, phase: str = "load") -> dict:
        now, totals = time.monotonic(), self.totals
        then, calls, refreshes, reconnects, resumes, cpu, errors = self._last
        cpu_now, error_count = cpu_seconds([self.pid]), sum(totals.errors.values())
        elapsed = max(now - then, 1e-9)
        latencies = sorted(totals.latencies)
        totals.latencies.clear()
        sample = {
            "t": round(now - self.started, 1),
            "phase": phase,
            "rss_mib": round(rss_kib([self.pid]) / 1024, 1),
            "fds": open_fds(self.pid),
            "sessions": totals.sessions_open,
            "calls": totals.calls - calls,
            "calls_per_s": round((totals.calls - calls) / elapsed, 1),
            "p50_ms": round(percentile(latencies, 0.50) * 1000, 1) if latencies else None,
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1) if latencies else None,
            "refreshes": totals.refreshes - refreshes,
            "reconnects": totals.reconnects - reconnects,
            "resumes": totals.resumes - resumes,
            "errors": error_count - errors,
            "server_cpu": round((cpu_now - cpu) / elapsed, 2),
        }
        self._last = (now, totals.calls, totals.refreshes, totals.reconnects, totals.resumes, cpu_now, error_count)
        self.samples.append(sample)
        return sample


def progress_line(sample: dict) -> str:
    return (
        f"{sample['t']:7.0f}s {sample['phase']:6} RSS {sample['rss_mib']:6.1f} MiB  FDs {sample['fds']:4}  "
        f"sessions {sample['sessions']:4}  {sample['calls_per_s']:6.1f} calls/s  p99 {sample['p99_ms'] or 0:6.1f} ms  "
        f"refreshes {sample['refreshes']:3}  reconnects {sample['reconnects']:3}  errors {sample['errors']}"
    )


async def soak(args, server, client_id: str, username: str, grants: list[dict], log) -> dict:
    host, port = servers.HOST, server.port
    runner = Soak(args, host, port, client_id, username)
    started = time.monotonic()
    sampler = Sampler(server.process.pid, runner.totals, started)
    log(progress_line(sampler.take("before")))  # the server with its grants minted, before any session
    transports = ["http" if i % 2 == 0 else "sse" for i in range(args.sessions)]
    users = [
        asyncio.ensure_future(runner.run_user(i, transport, Grant(g["access_token"], g["refresh_token"])))
        for i, (transport, g) in enumerate(zip(transports, grants, strict=False))
    ]
    deadline = started + args.minutes * 60
    snapshots = Snapshots(server.process.pid, args.trace_dir) if args.tracemalloc else None
    warmed_up = started + args.warmup_minutes * 60
    while (now := time.monotonic()) < deadline:
        if snapshots is not None and not snapshots.taken and now >= warmed_up:
            snapshots.take()  # after the warm-up: what the server holds once it has seen every path
        # Until the next sample is due (or, should every client have stopped, at once).
        await asyncio.wait(users, timeout=min(args.sample_seconds, deadline - now))
        if server.process.poll() is not None:
            runner.totals.errors[f"the server exited with status {server.process.returncode}"] += 1
            break
        log(progress_line(sampler.take()))
    if snapshots is not None and snapshots.taken and server.process.poll() is None:
        snapshots.take()  # the end of the load, sessions still open
    runner.stop.set()
    done, stuck = await asyncio.wait(users, timeout=OP_TIMEOUT * 2)
    for task in stuck:
        task.cancel()
    runner.totals.errors.update({"a client did not stop within its timeout": len(stuck)} if stuck else {})
    for task in done:
        if task.exception() is not None:
            runner.totals.error("client crashed", task.exception())
    if server.process.poll() is None:
        log(progress_line(sampler.take("after")))  # every session closed: what the server holds at rest
        if snapshots is not None and len(snapshots.taken) == 2:
            # Every session ended: what is still held from the load beyond the warm-up's is left
            # behind by ended sessions or requests (or is a cache's steady size).
            snapshots.take()
    # Read after the clients stopped: loading snapshots takes this process seconds.
    traced = None
    if snapshots is not None and len(snapshots.taken) > 1:
        traced = {"load": await snapshots.growth(1)}
        if len(snapshots.taken) > 2:
            traced["left"] = await snapshots.growth(2)
    return {
        "samples": sampler.samples,
        "errors": dict(runner.totals.errors.most_common()),
        "tracemalloc": traced,
    }


class Snapshots:
    """tracemalloc snapshots of the server, asked for with SIGUSR2 (``mcpsite/memory_trace.py``)."""

    TOP = 15  # lines of growth the report lists
    WAIT_SECONDS = 120.0  # a snapshot of a big heap takes a while to write

    def __init__(self, pid: int, directory: Path):
        self.pid = pid
        self.directory = directory
        self.taken: list[tuple[float, Path]] = []

    def take(self) -> None:
        number = len(self.taken) + 1
        os.kill(self.pid, signal.SIGUSR2)
        self.taken.append((time.monotonic(), self.directory / f"{self.pid}-{number}.tracemalloc"))

    async def growth(self, later: int) -> dict:
        """What grew between the first snapshot and snapshot number ``later`` (0-based), by line
        of code (top ``TOP``)."""
        import tracemalloc

        for _, path in (self.taken[0], self.taken[later]):
            # The server writes the file under another name and renames it when done.
            deadline = time.monotonic() + self.WAIT_SECONDS
            while not path.exists():
                if time.monotonic() > deadline:
                    return {"error": f"no snapshot {path.name} within {self.WAIT_SECONDS:g} s"}
                await asyncio.sleep(0.5)  # polling a file the server is writing; bounded above
        first, last = await asyncio.to_thread(
            lambda: [tracemalloc.Snapshot.load(str(path)) for _, path in (self.taken[0], self.taken[later])]
        )
        differences = last.compare_to(first, "lineno")
        total = sum(stat.size_diff for stat in differences)
        # The call chains behind the biggest growth (as deep as the server traced).
        chains = last.compare_to(first, "traceback")[:3]
        return {
            "chains": [
                {"size_diff_kib": round(stat.size_diff / 1024, 1), "frames": stat.traceback.format()[-24:]}
                for stat in chains
            ],
            "minutes_between": round((self.taken[later][0] - self.taken[0][0]) / 60, 1),
            "total_kib": round(total / 1024, 1),
            "top": [
                {
                    "where": f"{stat.traceback[0].filename}:{stat.traceback[0].lineno}",
                    "size_diff_kib": round(stat.size_diff / 1024, 1),
                    "count_diff": stat.count_diff,
                    "size_kib": round(stat.size / 1024, 1),
                }
                for stat in differences[: self.TOP]
            ],
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs")
    parser.add_argument("--sessions", type=int, default=200, help="concurrent clients, half on each transport")
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds a client waits between calls")
    parser.add_argument("--session-seconds", type=float, default=60.0, help="mean lifetime of a session")
    parser.add_argument("--refresh-seconds", type=float, default=60.0, help="mean seconds between token refreshes")
    parser.add_argument(
        "--resume-fraction",
        type=float,
        default=0.5,
        help="share of Streamable HTTP sessions that drop and resume their GET stream",
    )
    parser.add_argument(
        "--sample-seconds",
        type=float,
        default=None,
        help="seconds between samples (default 10, or less so a run has at least 12)",
    )
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results")
    parser.add_argument(
        "--tracemalloc", type=int, default=0, help="frames the server traces (0: off); snapshots after the warm-up"
    )
    parser.add_argument(
        "--warmup-minutes", type=float, default=3.0, help="minutes of load before the first tracemalloc snapshot"
    )
    args = parser.parse_args()
    if args.sample_seconds is None:
        args.sample_seconds = min(10.0, args.minutes * 60 / 12)
    pinned = len(os.sched_getaffinity(0)) >= 2
    if pinned:
        os.sched_setaffinity(0, LOAD_CPUS)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on the way out
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    meta = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "stamp": datetime.now(UTC).strftime("%Y%m%d-%H%M%S"),
        "minutes": args.minutes,
        "sessions": args.sessions,
        "think_s": args.think,
        "session_s": args.session_seconds,
        "refresh_s": args.refresh_seconds,
        "resume_fraction": args.resume_fraction,
        "sample_s": args.sample_seconds,
        "pinned": pinned,
        "cpus": os.cpu_count(),
        "limits": GENEROUS_LIMITS,
        "tracemalloc": args.tracemalloc,
    }
    with tempfile.TemporaryDirectory(prefix="mcp-soak-") as tmp:
        directory = Path(tmp)
        log("preparing the database (migrate, user)...")
        template = servers.prepare_template(directory)
        args.trace_dir = directory
        tracing = {"MCP_TRACEMALLOC": str(args.tracemalloc), "MCP_TRACEMALLOC_DIR": str(directory)}
        server = servers.start(
            SERVER,
            servers.free_port(),
            directory,
            template=template,
            token="",
            cpus=SERVER_CPUS if pinned else None,
            extra_env={**GENEROUS_LIMITS, **(tracing if args.tracemalloc else {})},
        )
        try:
            log(
                f"server up at {server.url} (pid {server.process.pid}); "
                f"minting {args.sessions} grants through the OAuth flow..."
            )
            client_id, grants = asyncio.run(
                mint_grants(server.url, template.username, template.password, args.sessions)
            )
            log(f"running {args.sessions} sessions for {args.minutes:g} min...")
            results = asyncio.run(soak(args, server, client_id, template.username, grants, log))
        finally:
            server.stop()
    results["meta"] = meta
    markdown, _ = soak_report.write(results, args.output)
    print(markdown)
    for error, count in results["errors"].items():
        log(f"ERROR x{count}: {error}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
