"""The load generator, run as its own process so that it has a core of its own.

    python -m bench.load calls --url URL --transport http|sse|stateless --users N --window S [--token T] [--pids P,...]
    python -m bench.load idle  --url URL --transport sse|get|listen --streams N [--token T] [--pids P,...]

`calls`: every virtual user opens its own session (initialize,
notifications/initialized), then all start together and loop
`tools/call add` for a warm-up and then the measured window; only calls that
start and end inside the window count (`stateless`, 2026-07-28: no session to
open, each user has its connection). `idle`: open N sessions with a stream
each (GET /sse, or GET /mcp after initialize), or N 2026-07-28
`subscriptions/listen` streams, and report the servers' resident memory
before and after. Both print one JSON object; `--pids` names
the server processes whose CPU time and resident memory are read from /proc.
"""

import argparse
import asyncio
import json
import os
import time
from urllib.parse import urlsplit

from bench.clients import CallFailed, HTTPClient, SSEClient, StatelessClient, make_client

OPEN_CONCURRENCY = 32  # sessions opened at once: stays under daphne's listen backlog of 50
OPEN_TIMEOUT = 60.0
CLOSE_TIMEOUT = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the servers' processes, read from /proc --------------------------------------------------
def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as status:
            total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return total


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime, all threads
    return total / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds spent busy on all cores since boot (everything but idle and iowait)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


# -- calls: throughput and latency ------------------------------------------------------------
class Window:
    def __init__(self, warmup: float, window: float):
        self.go = asyncio.Event()
        self.warmup, self.window = warmup, window
        self.start = self.end = 0.0

    def open(self) -> None:
        self.start = time.perf_counter() + self.warmup
        self.end = self.start + self.window
        self.go.set()


async def _open(client, gate: asyncio.Semaphore):
    async with gate:
        await client.open()
    return client


async def _user(client, window: Window, latencies: list[float], errors: list[str], done: list[int]) -> None:
    await window.go.wait()
    clock = time.perf_counter
    end = window.end
    start = window.start
    record = latencies.append
    while True:
        began = clock()
        if began >= end:
            return
        try:
            await client.call()
        except CallFailed as exc:  # an error answer: counted, and the user goes on
            errors.append(str(exc))
            continue
        except Exception as exc:  # the connection is gone: counted, and this user stops
            errors.append(f"{type(exc).__name__}: {exc}")
            return
        finished = clock()
        done[0] += 1
        if began >= start and finished <= end:
            record(finished - began)


async def run_calls(args) -> dict:
    host, port = _address(args.url)
    pids = _pids(args.pids)
    clients = [make_client(args.transport, host, port, args.token) for _ in range(args.users)]
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    opened_at = time.perf_counter()
    results = await asyncio.wait_for(
        asyncio.gather(*(_open(c, gate) for c in clients), return_exceptions=True), OPEN_TIMEOUT
    )
    errors = [f"open: {type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    ready = [r for r in results if not isinstance(r, BaseException)]
    open_seconds = time.perf_counter() - opened_at

    window = Window(args.warmup, args.window)
    latencies: list[float] = []
    done = [0]  # every call answered, warm-up included (what counters read around the run divide by)
    users = [asyncio.ensure_future(_user(c, window, latencies, errors, done)) for c in ready]
    window.open()
    await asyncio.sleep(max(0.0, window.start - time.perf_counter()))
    cpu_before, client_cpu_before, busy_before = cpu_seconds(pids), time.process_time(), machine_busy_seconds()
    await asyncio.sleep(max(0.0, window.end - time.perf_counter()))
    cpu_after, client_cpu_after, busy_after = cpu_seconds(pids), time.process_time(), machine_busy_seconds()
    rss = rss_kib(pids) if pids else 0
    # A call in flight at the end of the window finishes; one that hangs is cut off here.
    _done, stuck = await asyncio.wait(users, timeout=CLOSE_TIMEOUT)
    for task in stuck:
        task.cancel()
    errors += ["timeout: a call did not finish"] * len(stuck)
    await asyncio.wait_for(asyncio.gather(*(c.close() for c in ready), return_exceptions=True), CLOSE_TIMEOUT)

    latencies.sort()
    return {
        "users": args.users,
        "sessions": len(ready),
        "calls": len(latencies),
        "all_calls": done[0],
        "throughput": len(latencies) / args.window,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "errors": len(errors),
        "first_errors": errors[:3],
        "server_cpu": (cpu_after - cpu_before) / args.window if pids else None,
        "client_cpu": (client_cpu_after - client_cpu_before) / args.window,
        # Cores busy with anything but the servers and this generator: other load on the machine.
        "other_cpu": (busy_after - busy_before - (cpu_after - cpu_before) - (client_cpu_after - client_cpu_before))
        / args.window,
        "rss_kib": rss,
        "open_seconds": round(open_seconds, 2),
    }


# -- idle: resident memory per open session with a stream ---------------------------------------
async def _open_idle(kind: str, host: str, port: int, token: str | None, gate: asyncio.Semaphore):
    async with gate:
        if kind == "sse":
            client = SSEClient(host, port, token)
            await client.open(keep_post_connection=False)
        elif kind == "listen":
            client = StatelessClient(host, port, token)
            await client.open()
            await client.open_listen_stream()
        else:
            client = HTTPClient(host, port, token)
            await client.open()
            await client.open_standalone_stream()
    return client


async def _open_many(kind, host, port, token, count):
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    results = await asyncio.wait_for(
        asyncio.gather(*(_open_idle(kind, host, port, token, gate) for _ in range(count)), return_exceptions=True),
        OPEN_TIMEOUT * 3,
    )
    return [r for r in results if not isinstance(r, BaseException)], [
        r for r in results if isinstance(r, BaseException)
    ]


async def _close_all(clients) -> None:
    await asyncio.wait_for(
        asyncio.gather(*(c.close(end_session=False) for c in clients), return_exceptions=True), CLOSE_TIMEOUT
    )


async def run_idle(args) -> dict:
    host, port = _address(args.url)
    pids = _pids(args.pids)
    # Warm up first: code paths loaded and first allocations made are not per-session costs.
    warm, _ = await _open_many(args.transport, host, port, args.token, 50)
    await _close_all(warm)
    await asyncio.sleep(args.settle)
    before = rss_kib(pids)
    clients, failures = await _open_many(args.transport, host, port, args.token, args.streams)
    await asyncio.sleep(args.settle)
    after = rss_kib(pids)
    await _close_all(clients)
    return {
        "streams": len(clients),
        "failures": len(failures),
        "first_errors": [f"{type(f).__name__}: {f}" for f in failures[:3]],
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_session": (after - before) / max(1, len(clients)),
    }


# -- command line -----------------------------------------------------------------------------
def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def _pids(value: str | None) -> list[int]:
    return [int(pid) for pid in value.split(",") if pid] if value else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    calls = modes.add_parser("calls")
    calls.add_argument("--transport", choices=("http", "sse", "stateless"), required=True)
    calls.add_argument("--users", type=int, required=True)
    calls.add_argument("--window", type=float, default=5.0)
    calls.add_argument("--warmup", type=float, default=1.0)
    idle = modes.add_parser("idle")
    idle.add_argument("--transport", choices=("sse", "get", "listen"), required=True)
    idle.add_argument("--streams", type=int, default=1000)
    idle.add_argument("--settle", type=float, default=2.0)
    for mode in (calls, idle):
        mode.add_argument("--url", required=True)
        mode.add_argument("--token")
        mode.add_argument("--pids")
    args = parser.parse_args()
    run = run_calls if args.mode == "calls" else run_idle
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
