"""`make bench`: this server side by side with the `mcp` SDK's reference server and a floor.

Starts every server on loopback, pinned to core 0 (one worker each), and runs
the load generator (`bench/load.py`) in its own process pinned to core 1, so
that a server has one core to itself and the generator another. For each
transport it first loads every server once, unmeasured (`--first-warmup`);
then, for each number of users, it measures every server in turn, then again
in another order, `--repeats` times, so that drift on the machine shows as a
spread between repeats. Then memory per idle session (fresh servers) and,
unless `--no-scale-out`, one worker against two behind nginx. Prints the
Markdown table and writes it, the raw numbers and a plot to bench/results/,
then the same tables into docs/performance.md between its marker lines
and the README's headline line (`bench/report.py` renders them; `--no-docs` leaves both
alone, for trial runs).

    python bench/run.py [--window 3] [--repeats 3] [--first-warmup 3] [--users 1,32,256]
                        [--streams 1000] [--no-scale-out] [--no-docs]
"""

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # run as a script from anywhere: `bench` and `tests` import

from bench import report, servers

SERVER_CPUS = {0}
LOAD_CPUS = {1}
HTTP_SERVERS = ["ours-daphne", "ours-uvicorn", "sdk-http", "floor-daphne", "floor-uvicorn"]
STATELESS_SERVERS = ["ours-daphne", "ours-uvicorn", "sdk-stateless", "floor-daphne", "floor-uvicorn"]
SSE_SERVERS = ["ours-daphne", "ours-uvicorn", "sdk-sse", "floor-daphne", "floor-uvicorn"]
# Each transport with the servers measured on it: Streamable HTTP with sessions (2025-11-25),
# the stateless era (2026-07-28), the legacy HTTP+SSE transport.
TRANSPORTS = (("http", HTTP_SERVERS), ("stateless", STATELESS_SERVERS), ("sse", SSE_SERVERS))
UNGUARDED = "ours-unguarded-daphne"
GUARD_USERS = 32
# (server, stream) pairs measured for memory per idle session.
IDLE = [
    ("ours-daphne", "sse"),
    ("ours-daphne", "get"),
    ("sdk-sse", "sse"),
    ("sdk-http", "get"),
    ("ours-daphne", "listen"),
    ("sdk-stateless", "listen"),
    ("floor-daphne", "sse"),
    ("floor-daphne", "get"),
]
SSE_USERS_CAP = 256  # each SSE user holds two connections and a stream
WARM_UP_USERS = 32


def load(
    server, mode: str, transport: str, token: str, options: list[str], timeout: float, pinned: bool = True
) -> dict:
    """One run of the load generator against `server` (with `url` and `pids`), in its own process."""
    cpus = LOAD_CPUS if pinned else None
    command = [
        sys.executable,
        "-m",
        "bench.load",
        mode,
        "--url",
        server.url,
        "--transport",
        transport,
        "--token",
        token,
        "--pids",
        ",".join(map(str, server.pids)),
        *options,
    ]
    result = subprocess.run(
        command,
        cwd=BENCH_DIR.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    if result.returncode != 0:
        return {"failed": result.stderr[-2000:]}
    return json.loads(result.stdout)


def rotated(items, repeat: int) -> list:
    """``items`` in the order of round ``repeat``: rotated each round, so that no server always runs
    first (or right after another)."""
    items = list(items)
    shift = repeat % len(items)
    return items[shift:] + items[:shift]


def warm_up(running: dict, names: list[str], transport: str, token: str, args) -> None:
    """Load every server once on ``transport`` before its first cell, and keep nothing of it.

    A server's first seconds on a path are slower than the rest (code and caches never run
    yet: the first cell's first round of this server ran 438 calls/s, the next two 602 and
    721; the SDK's 778, 857, 944), and the warm-up of each round is too short to hide it, so
    the first cell measured who was colder, not who is faster. Every server gets the same.
    """
    for name in names:
        load(
            running[name],
            "calls",
            transport,
            token,
            ["--window", "1", "--warmup", str(args.first_warmup), "--users", str(WARM_UP_USERS)],
            args.window * 4 + 90,
        )


def measure_calls(running: dict, token: str, args, log) -> list[dict]:
    rows = []
    options = ["--window", str(args.window), "--warmup", str(args.warmup)]
    for transport, names in TRANSPORTS:
        if args.first_warmup > 0:
            log(f"warming up every server on {transport} ({args.first_warmup:g} s + 1 s each, not measured)")
            guarded_too = [UNGUARDED] if transport == "http" and GUARD_USERS in args.users else []
            warm_up(running, names + guarded_too, transport, token, args)
        for users in args.users:
            if transport == "sse" and users > SSE_USERS_CAP:
                continue
            cell = names + ([UNGUARDED] if transport == "http" and users == GUARD_USERS else [])
            for repeat in range(args.repeats):
                for name in rotated(cell, repeat):
                    result = load(
                        running[name],
                        "calls",
                        transport,
                        token,
                        [*options, "--users", str(users)],
                        args.window * 4 + 90,
                    )
                    row = {"server": name, "transport": transport, "users": users, "repeat": repeat, **result}
                    rows.append(row)
                    log(report.progress_line(row))
    return rows


def measure_idle(template, token: str, ports: dict, directory: Path, args, log) -> list[dict]:
    """Memory per idle session, each on a freshly started server (no heap left over from load)."""
    rows = []
    for name, stream in IDLE:
        server = servers.start(
            name,
            ports[f"idle-{name}-{stream}"],
            directory / "idle" / stream,
            template=template,
            token=token,
            cpus=SERVER_CPUS,
        )
        try:
            result = load(server, "idle", stream, token, ["--streams", str(args.streams)], 600)
        finally:
            server.stop()
        row = {"server": name, "stream": stream, **result}
        rows.append(row)
        kib, opened, failed = row.get("kib_per_session", float("nan")), row.get("streams"), row.get("failures")
        log(f"idle {name:22} {stream:4} {kib:7.1f} KiB/session ({opened} open, {failed} failed)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=0.75, help="seconds of load before each window")
    parser.add_argument(
        "--first-warmup", type=float, default=3.0, help="seconds of load on each server before a transport's first cell"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--users", default="1,32,256", help="virtual users per run, comma-separated")
    parser.add_argument("--streams", type=int, default=1000, help="idle sessions for the memory measurement")
    parser.add_argument("--no-scale-out", dest="scale_out", action="store_false", help="skip 2 workers against 1")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--no-docs", dest="docs", action="store_false", help="do not update docs/performance.md")
    args = parser.parse_args()
    args.users = [int(u) for u in args.users.split(",")]
    if len(os.sched_getaffinity(0)) < 2:
        global SERVER_CPUS, LOAD_CPUS
        SERVER_CPUS = LOAD_CPUS = None  # one core: nothing to pin apart

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    started = time.monotonic()
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    results = {"meta": _meta(args), "calls": [], "idle": [], "scale_out": []}
    with tempfile.TemporaryDirectory(prefix="mcp-bench-") as tmp:
        directory = Path(tmp)
        log("preparing the database (migrate, bench user)...")
        template = servers.prepare_template(directory)
        names = sorted({*HTTP_SERVERS, *STATELESS_SERVERS, *SSE_SERVERS, UNGUARDED})
        ports = {name: servers.free_port() for name in names} | {f"idle-{n}-{s}": servers.free_port() for n, s in IDLE}
        ours = [port for key, port in ports.items() if "ours" in key]
        audiences = [f"http://{servers.HOST}:{port}" for port in ours]
        token = servers.mint_token(f"sqlite:///{template.database}", template.username, audiences)

        results["idle"] = measure_idle(template, token, ports, directory, args, log)

        running = {}
        try:
            for name in names:
                running[name] = servers.start(
                    name, ports[name], directory, template=template, token=token, cpus=SERVER_CPUS
                )
            log(f"servers up: {', '.join(f'{n} {s.url}' for n, s in running.items())}")
            results["calls"] = measure_calls(running, token, args, log)
        finally:
            for server in running.values():
                server.stop()

        if args.scale_out:
            from bench import scale_out

            results["scale_out"] = scale_out.measure(directory / "scale-out", args, load, log)

    results["meta"]["duration_s"] = round(time.monotonic() - started)
    markdown = report.write(results, args.output)
    print(markdown)
    if args.docs:
        page = report.write_docs(results, args.output / f"{results['meta']['stamp']}.json")
        log(f"{page} updated (the section between its bench markers)")
        log(f"{report.write_readme(results)} updated (its headline line)")


def _meta(args) -> dict:
    from importlib.metadata import version

    return {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "stamp": datetime.now(UTC).strftime("%Y%m%d-%H%M%S"),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in ("daphne", "uvicorn", "channels", "mcp", "Django")},
        "window_s": args.window,
        "warmup_s": args.warmup,
        "first_warmup_s": args.first_warmup,
        "repeats": args.repeats,
        "pinned": SERVER_CPUS is not None,
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "?")
    except OSError:
        return "?"


if __name__ == "__main__":
    main()
