"""The audit trail's durability settings, measured each way: this server with SQLite's
`synchronous=NORMAL` (the default, `SQLITE_SYNCHRONOUS=normal`), with `synchronous=FULL`
(every commit flushed to disk), and answering before the commit (`MCP_AUDIT_WAIT_FOR_COMMIT=0`,
on `NORMAL`), beside the SDK reference, in the same run.

By default every call is answered only after its audit row is committed, so the setting is
paid on every call; `docs/performance.md` ("Durability of the audit trail") says what each mode
can lose and why the defaults are what they are. Pinned as `make bench` pins (server core 0, load
core 1), under daphne, at one user and at 32, on Streamable HTTP with sessions (2025-11-25)
and stateless (2026-07-28); medians of `--repeats` rounds in a rotated order.

    python bench/durability.py [--window 3] [--repeats 3]

Prints a Markdown table and writes it to bench/results/durability-<time>.md.
"""

import argparse
import itertools
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from bench import run, servers

# (label, server name, extra environment of ours)
SERVERS = [
    ("this server, synchronous=NORMAL", "ours-daphne", {"SQLITE_SYNCHRONOUS": "normal"}),
    ("this server, synchronous=FULL", "ours-daphne", {"SQLITE_SYNCHRONOUS": "full"}),
    ("this server, answered before the commit", "ours-daphne", {"MCP_AUDIT_WAIT_FOR_COMMIT": "0"}),
    ("SDK reference", None, {}),
]
REFERENCE = {"http": "sdk-http", "stateless": "sdk-stateless"}
CELLS = [("http", 1), ("stateless", 1), ("http", 32), ("stateless", 32)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.75)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args()
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    started = datetime.now(UTC)
    results: dict[tuple, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="mcp-durability-") as tmp:
        directory = Path(tmp)
        template = servers.prepare_template(directory)
        keys = [(label, transport) for label, *_ in SERVERS for transport in REFERENCE]
        ports = {key: servers.free_port() for key in keys}
        audiences = [f"http://{servers.HOST}:{port}" for port in ports.values()]
        token = servers.mint_token(f"sqlite:///{template.database}", template.username, audiences)
        running = {}
        try:
            for index, ((label, name, extra), transport) in enumerate(itertools.product(SERVERS, REFERENCE)):
                running[label, transport] = servers.start(
                    name or REFERENCE[transport],
                    ports[label, transport],
                    directory / str(index),
                    template=template,
                    token=token,
                    cpus=run.SERVER_CPUS,
                    extra_env=extra,
                )
            options = ["--window", str(args.window), "--warmup", str(args.warmup)]
            labels = [label for label, *_ in SERVERS]
            for transport, users in CELLS:
                for repeat in range(args.repeats):
                    for label in run.rotated(labels, repeat):
                        row = run.load(
                            running[label, transport],
                            "calls",
                            transport,
                            token,
                            [*options, "--users", str(users)],
                            args.window * 4 + 90,
                        )
                        if "failed" in row or row.get("errors"):
                            raise SystemExit(f"{label} {transport} {users}: {row.get('failed') or row['first_errors']}")
                        results.setdefault((label, transport, users), []).append(row)
                        figures = f"{row['throughput']:6.0f}/s p50 {row['p50_ms']:5.2f} ms"
                        log(f"{transport:9} {users:3} {label:40} {figures}")
        finally:
            for server in running.values():
                server.stop()
    markdown = render(results, started, args)
    print(markdown)
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / f"durability-{started.strftime('%Y%m%d-%H%M%S')}.md"
    path.write_text(markdown)
    log(f"written to {path}")


def render(results: dict, started: datetime, args) -> str:
    def median(label, transport, users, key):
        return statistics.median(row[key] for row in results[label, transport, users])

    lines = [
        f"# The audit's durability settings, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"daphne, pinned to one core; medians of {args.repeats} rounds of {args.window:g} s.",
        "",
        "| server | 2025 sessions, 1 user: p50 ms | 2026 stateless, 1 user: p50 ms "
        "| 2025 sessions, 32 users: calls/s | 2026 stateless, 32 users: calls/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, *_ in SERVERS:
        cells = [f"{median(label, t, 1, 'p50_ms'):.2f}" for t in REFERENCE]
        cells += [f"{median(label, t, 32, 'throughput'):,.0f}" for t in REFERENCE]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    sdk = SERVERS[-1][0]
    lines += ["", "Against the SDK reference in the same run:", ""]
    for label, *_ in SERVERS[:-1]:
        ratios = [
            f"p50 at 1 user {median(label, t, 1, 'p50_ms') / median(sdk, t, 1, 'p50_ms'):.2f}x ({t})" for t in REFERENCE
        ] + [
            f"32 users {median(label, t, 32, 'throughput') / median(sdk, t, 32, 'throughput'):.2f}x ({t})"
            for t in REFERENCE
        ]
        lines.append(f"- {label}: " + "; ".join(ratios))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
