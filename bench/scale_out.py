"""Two workers against one: the deployment of deploy/ (daphne workers as the systemd
unit runs them, REDIS_URL, nginx with the project's proxy snippet, PostgreSQL),
started by the scale-out tests' own helpers (`tests/support/services.py`).

Both clusters share one PostgreSQL (started with fsync off, as the tests run
it) and each has its own Redis and nginx. Nothing is pinned: on a two-core
machine the workers, nginx, Redis, PostgreSQL and the load generator share
both cores, so this shows the overhead of the scale-out path more than it
shows what a second core buys. What it measures, on the stateless path
(2026-07-28: no session, so nothing to forward between workers): the workers'
CPU time per call, and the Redis commands (`INFO commandstats`) and database
transactions and rows (`pg_stat_database`) per call, read around each run,
which is what a model of N workers needs. One worker runs twice, at the users of
the two and at the half each of them carries: CPU per call is compared at equal load
per worker.

`make bench` runs it; alone (about 5 minutes), it writes bench/results/scale-out-<time>.md:

    python bench/scale_out.py [--window 3] [--repeats 3]
"""

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis

if __name__ == "__main__":  # run as a script: `bench` and `tests` import from the project
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import servers
from bench.run import rotated
from tests.support import services

USERS = 32
# (workers, users) per run: two workers at USERS, one at USERS, and one at the load each of the two
# carries (USERS / 2): an event-loop worker's CPU per call falls as its own concurrency rises, so
# CPU per call is compared at equal load per worker.
RUNS = ((1, USERS), (2, USERS), (1, USERS // 2))
TRANSPORT = "stateless"
# pg_stat_database's counters read around a run (transactions, and rows by what was done to them).
DATABASE_COUNTERS = ("xact_commit", "xact_rollback", "tup_returned", "tup_fetched", "tup_inserted", "tup_updated")


@dataclass
class Target:
    url: str
    pids: list[int] = field(default_factory=list)


def redis_commands(url: str) -> dict[str, int]:
    """Commands Redis has served since it started, by name (INFO commandstats)."""
    with redis.Redis.from_url(url) as client:
        stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): values["calls"] for name, values in stats.items()}


def database_counters(postgres, database: str = "mcp") -> dict[str, int]:
    with postgres.connect() as connection:
        row = connection.execute(
            f"SELECT {', '.join(DATABASE_COUNTERS)} FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    return dict(zip(DATABASE_COUNTERS, row, strict=True))


def _settled_counters(postgres) -> dict[str, int]:
    """The database's counters once every worker's connection has reported its share.

    A PostgreSQL backend reports its statistics at most once a second while busy and within
    10 s of going idle (PGSTAT_IDLE_INTERVAL): the counters are read until they have not moved
    for longer than that, or for 40 s at most."""
    quiet_for, deadline = 11.0, time.monotonic() + 40.0
    last, since = database_counters(postgres), time.monotonic()
    while time.monotonic() - since < quiet_for and time.monotonic() < deadline:
        time.sleep(0.5)  # polling counters another process updates; bounded by the deadline
        now = database_counters(postgres)
        if now != last:
            last, since = now, time.monotonic()
    return last


def per_call(before: dict[str, int], after: dict[str, int], calls: int, skip: tuple[str, ...] = ()) -> dict:
    """Each counter's growth per call (counters that did not move left out)."""
    return {
        name: round((after.get(name, 0) - before.get(name, 0)) / calls, 3)
        for name in sorted(after)
        if name not in skip and after.get(name, 0) != before.get(name, 0)
    }


def measure(directory, args, load, log) -> list[dict]:
    try:
        services.require_binaries()
    except AssertionError as exc:
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
                services.cluster_directory(base), database, users, workers=workers, **servers.BENCH_LIMITS
            )
        token = servers.mint_token(database, users.username, [c.url for c in clusters.values()])
        options = ["--window", str(args.window), "--warmup", str(args.warmup)]
        counters = _settled_counters(postgres)
        for repeat in range(args.repeats):
            for workers, load_users in rotated(RUNS, repeat):
                cluster = clusters[workers]
                target = Target(cluster.url, [w.pid for w in cluster.workers])
                commands = redis_commands(cluster.redis.url)
                run_options = [*options, "--users", str(load_users)]
                result = load(target, "calls", TRANSPORT, token, run_options, args.window * 4 + 90, pinned=False)
                row = {
                    "server": f"{workers} worker(s)",
                    "workers": workers,
                    "transport": TRANSPORT,
                    "users": load_users,
                    "repeat": repeat,
                    **result,
                }
                settled = _settled_counters(postgres)
                if "failed" not in row and row.get("all_calls"):
                    calls = row["all_calls"]
                    row["cpu_ms_per_call"] = row["server_cpu"] * args.window / row["calls"] * 1000
                    # INFO's own calls (the two reads) are not the workers'.
                    row["redis_per_call"] = per_call(commands, redis_commands(cluster.redis.url), calls, ("info",))
                    row["database_per_call"] = per_call(counters, settled, calls)
                counters = settled  # one database for both clusters: this run's end is the next one's start
                rows.append(row)
                log(
                    f"scale-out {workers} worker(s), {load_users} users: "
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


def main() -> None:
    from bench import report, run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.75)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="mcp-scale-out-") as tmp:
        rows = measure(Path(tmp) / "scale-out", args, run.load, log)
    lines, cpu_ratio = report.scale_out_lines(rows)
    ratio = (
        ""
        if cpu_ratio is None
        else f"CPU per call, two workers against one at the same load per worker: {cpu_ratio:.2f}x"
    )
    markdown = "\n".join([f"# Scale-out, {started:%Y-%m-%d %H:%M} UTC", "", *lines, "", ratio]) + "\n"
    print(markdown)
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / f"scale-out-{started:%Y%m%d-%H%M%S}.md"
    path.write_text(markdown)
    log(f"written to {path}")


if __name__ == "__main__":
    main()
