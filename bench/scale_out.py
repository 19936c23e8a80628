"""Two workers against one: the deployment of deploy/ (daphne workers as the systemd
unit runs them, REDIS_URL, nginx with the project's proxy snippet, PostgreSQL),
started by the scale-out tests' own helpers (`tests/support/services.py`).

Both clusters share one PostgreSQL (started with fsync off, as the tests run
it) and each has its own Redis and nginx. Nothing is pinned: on a two-core
machine the workers, nginx, Redis, PostgreSQL and the load generator share
both cores, so this shows the overhead of the scale-out path more than it
shows what a second core buys.
"""

import shutil
from dataclasses import dataclass, field

from bench import servers
from tests.support.live_server import GENEROUS_LIMITS

USERS = 32


@dataclass
class Target:
    url: str
    pids: list[int] = field(default_factory=list)


def measure(directory, args, load, log) -> list[dict]:
    try:
        from tests import services

        services.require_binaries()
    except (ImportError, AssertionError) as exc:
        log(f"scale-out skipped: {exc}")
        return []
    base = services.service_base_directory()
    postgres = services.PostgresServer(base / "postgres")
    clusters = {}
    rows = []
    try:
        postgres.start()
        database = postgres.create_database("mcp")
        users = services.prepare_database(database)
        for workers in (1, 2):
            clusters[workers] = services.start_cluster(
                services.cluster_directory(base), database, users, workers=workers, **GENEROUS_LIMITS
            )
        token = servers.mint_token(database, users.username, [c.url for c in clusters.values()])
        options = ["--window", str(args.window), "--warmup", str(args.warmup), "--users", str(USERS)]
        for repeat in range(args.repeats):
            for workers in (1, 2) if repeat % 2 == 0 else (2, 1):
                cluster = clusters[workers]
                target = Target(cluster.url, [w.pid for w in cluster.workers])
                result = load(target, "calls", "http", token, options, args.window * 4 + 90, pinned=False)
                row = {
                    "server": f"{workers} worker(s)",
                    "workers": workers,
                    "transport": "http",
                    "users": USERS,
                    "repeat": repeat,
                    **result,
                }
                rows.append(row)
                log(
                    f"scale-out {workers} worker(s): "
                    + (
                        f"{row['throughput']:.0f}/s p50 {row['p50_ms']:.1f} p99 {row['p99_ms']:.1f} ms "
                        f"err {row['errors']}"
                        if "failed" not in row
                        else row["failed"][-300:]
                    )
                )
    except Exception as exc:  # the rest of the benchmark stands without it
        log(f"scale-out failed: {type(exc).__name__}: {exc}")
    finally:
        for cluster in clusters.values():
            try:
                cluster.stop()
            except AssertionError:
                pass
        try:
            postgres.stop()
        except AssertionError:
            pass
        shutil.rmtree(base, ignore_errors=True)
    return rows
