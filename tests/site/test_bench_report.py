"""`make bench`'s report (bench/report.py): the tables, the targets and the README's headline
line, rendered from a results file of known figures."""

from bench import report

SERVERS = {
    "http": ["ours-daphne", "ours-uvicorn", "sdk-http", "floor-daphne", "floor-uvicorn"],
    "stateless": ["ours-daphne", "ours-uvicorn", "sdk-stateless", "floor-daphne", "floor-uvicorn"],
    "sse": ["ours-daphne", "ours-uvicorn", "sdk-sse", "floor-daphne", "floor-uvicorn"],
}
# calls/s at 32 users and p50 ms at one user, per server (the SDK at 1,000 calls/s and 1 ms).
THROUGHPUT = {"ours-daphne": 1250, "ours-uvicorn": 1600, "floor-daphne": 2000, "floor-uvicorn": 2500}
P50 = {"ours-daphne": 1.2, "ours-uvicorn": 1.4, "floor-daphne": 0.5, "floor-uvicorn": 0.4}


def run(transport, users, server, repeat):
    throughput = THROUGHPUT.get(server, 1000) if users > 1 else 1000 / P50.get(server, 1.0)
    return {
        "server": server,
        "transport": transport,
        "users": users,
        "repeat": repeat,
        "throughput": throughput + repeat,  # the median of 3 repeats is the middle one
        "p50_ms": P50.get(server, 1.0) if users == 1 else 25.0,
        "p99_ms": 40.0 if server.startswith("ours") else 90.0,
        "errors": 0,
        "server_cpu": 0.9,
        "client_cpu": 0.1,
        "other_cpu": 0.0,
        "rss_kib": 100 * 1024,
    }


def results():
    calls = [
        run(transport, users, server, repeat - 1)
        for transport, servers in SERVERS.items()
        for users in (1, 32)
        for server in servers
        for repeat in range(3)
    ]
    idle = [
        {"server": "ours-daphne", "stream": "get", "kib_per_session": 39.0, "streams": 1000, "failures": 0}
        | {"rss_before_kib": 1000, "rss_after_kib": 40000},
        {"server": "ours-daphne", "stream": "listen", "kib_per_session": 31.0, "streams": 1000, "failures": 0}
        | {"rss_before_kib": 1000, "rss_after_kib": 32000},
    ]
    # One worker at 32 users and at 16 (the load each of two carries), two workers at 32; CPU per
    # call is compared at equal load per worker: 1.05 against 1.0 (not against 0.8 at 32 users).
    cpu_per_call = {(1, 32): 0.8, (1, 16): 1.0, (2, 32): 1.05}
    scale_out = [
        {
            "server": f"{workers} worker(s)",
            "workers": workers,
            "transport": "stateless",
            "users": users,
            "repeat": repeat,
            "throughput": 900.0 * (1.5 if workers == 2 else 1),
            "p50_ms": 30.0,
            "p99_ms": 60.0,
            "errors": 0,
            "cpu_ms_per_call": cpu,
            "redis_per_call": {"evalsha": 1.0},
            "database_per_call": {"xact_commit": 0.5},
        }
        for (workers, users), cpu in cpu_per_call.items()
        for repeat in range(3)
    ]
    meta = {
        "started": "2026-12-03 04:00 UTC",
        "stamp": "20261203-040000",
        "cpus": 2,
        "cpu_model": "test",
        "python": "3.11",
        "versions": {"mcp": "2.3.0"},
        "window_s": 3,
        "warmup_s": 0.75,
        "repeats": 3,
        "pinned": True,
    }
    return {"meta": meta, "calls": calls, "idle": idle, "scale_out": scale_out}


def target(markdown: str, starts: str) -> str:
    return next(line for line in markdown.splitlines() if line.startswith(f"| {starts}"))


def test_every_era_has_its_rows_and_its_targets_against_the_sdk_in_the_same_cell():
    markdown = report.markdown(results())
    assert "| Streamable HTTP, 2026-07-28 | 32 | ours, daphne | 1,250 (1,249–1,251) |" in markdown
    assert "| Streamable HTTP, 2026-07-28 | 32 | SDK reference, stateless | 1,000 (999–1,001) |" in markdown
    assert "| Streamable HTTP, 2025-11-25 | 1 | ours, uvicorn |" in markdown
    assert target(markdown, "Streamable HTTP, 2026-07-28, daphne, 32 users: throughput ≥ 1.2x SDK").endswith(
        "| 1.25x | yes |"
    )
    assert target(markdown, "Streamable HTTP, 2026-07-28, uvicorn, 32 users: throughput ≥ 1.8x SDK").endswith(
        "| 1.60x | **no** |"
    )
    assert target(markdown, "Streamable HTTP, 2026-07-28, uvicorn, 1 user: p50 ≤ 1.3x SDK").endswith(
        "| 1.40 vs 1.00 ms (1.40x) | **no** |"
    )
    assert target(markdown, "idle GET /mcp stream: ≤ 40 KiB").endswith("| 39.0 KiB | yes |")
    assert target(markdown, "idle 2026 subscriptions/listen stream: ≤ 30 KiB").endswith("| 31.0 KiB | **no** |")
    assert target(
        markdown, "scale-out: CPU per call, 2 workers within 10% of one at the same load per worker"
    ).endswith("| 1.05x | yes |")
    assert "| operation | 1 worker, 16 users | 1 worker, 32 users | 2 workers, 32 users |" in markdown
    assert "| Redis `evalsha` | 1.00 | 1.00 | 1.00 |" in markdown


def test_make_bench_writes_the_performance_page_and_the_readme_line(tmp_path):
    page = tmp_path / "performance.md"
    page.write_text("# Performance\n\nprose\n\n<!-- bench:begin -->\nold\n<!-- bench:end -->\n\nmore prose\n")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n\n<!-- bench:headline -->old<!-- /bench:headline -->\n\nrest\n")
    data = results()
    report.write_docs(data, tmp_path / "run.json", page)
    report.write_readme(data, readme)
    text = page.read_text()
    assert text.startswith("# Performance\n\nprose\n") and text.endswith("\n\nmore prose\n")
    assert "old" not in text and "Streamable HTTP, 2026-07-28" in text
    line = readme.read_text().splitlines()[2]
    assert line.startswith("<!-- bench:headline -->Speed against the `mcp` SDK's own server")
    assert "2026-07-28 stateless calls 1.25x its throughput under daphne, 1.60x under uvicorn" in line
    assert "one user waits 1.20x its median time (2026, daphne)" in line
    assert line.endswith("<!-- /bench:headline -->")


def test_the_scale_out_run_reaches_the_cluster_helpers_it_starts_services_with():
    """A wrong import once made `make bench` skip the scale-out rows with a one-line log."""
    from bench import scale_out, servers

    assert callable(scale_out.services.start_cluster) and callable(scale_out.services.PostgresServer)
    # All users share one token in the benchmark: its count of calls running at once must not refuse them.
    assert servers.BENCH_LIMITS["MCP_MAX_CONCURRENT_CALLS_PER_SESSION"] == "0"


def test_the_durability_table_gives_each_mode_beside_the_sdk():
    from argparse import Namespace
    from datetime import UTC, datetime

    from bench import durability

    p50 = {
        "this server, synchronous=NORMAL": 1.2,
        "this server, synchronous=FULL": 1.6,
        "this server, answered before the commit": 0.9,
        "SDK reference": 1.0,
    }
    results = {
        (label, transport, users): [
            {"p50_ms": p50[label] if users == 1 else 25.0, "throughput": 1000.0 if users == 32 else 800.0}
        ]
        for label in p50
        for transport in ("http", "stateless")
        for users in (1, 32)
    }
    markdown = durability.render(results, datetime(2026, 12, 3, tzinfo=UTC), Namespace(repeats=1, window=3.0))
    assert "| this server, synchronous=FULL | 1.60 | 1.60 | 1,000 | 1,000 |" in markdown
    assert "- this server, synchronous=NORMAL: p50 at 1 user 1.20x (http)" in markdown
    assert "- this server, answered before the commit: p50 at 1 user 0.90x (http)" in markdown
