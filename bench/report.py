"""The benchmark's report: one Markdown table per measurement, the targets, and a plot.

`write(results, directory)` writes `<stamp>.md`, `<stamp>.json` (the raw
runs) and `<stamp>.png` (latency against concurrency) and returns the Markdown.
`write_docs(results, source)` puts the same report into docs/performance.md,
between the two marker lines, leaving the page's hand-written text alone;
`bench/run.py` calls it after every run. From an existing results file:

    python bench/report.py --docs bench/results/<stamp>.json
"""

import argparse
import json
import math
import os
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parent.parent
DOCS_PAGE = REPO / "docs" / "performance.md"
DOCS_BEGIN = "<!-- bench:begin -->"
DOCS_END = "<!-- bench:end -->"
README = REPO / "README.md"
HEADLINE_BEGIN = "<!-- bench:headline -->"
HEADLINE_END = "<!-- /bench:headline -->"

LABELS = {
    "ours-daphne": "ours, daphne",
    "ours-uvicorn": "ours, uvicorn",
    "ours-unguarded-daphne": "ours, daphne, no token guard",
    "sdk-http": "SDK reference",
    "sdk-stateless": "SDK reference, stateless",
    "sdk-sse": "SDK reference",
    "floor-daphne": "floor, daphne",
    "floor-uvicorn": "floor, uvicorn",
}
TRANSPORTS = {"http": "Streamable HTTP, 2025-11-25", "stateless": "Streamable HTTP, 2026-07-28", "sse": "HTTP+SSE"}
STREAMS = {"sse": "GET /sse", "get": "GET /mcp", "listen": "2026 subscriptions/listen"}
REFERENCE = {"http": "sdk-http", "stateless": "sdk-stateless", "sse": "sdk-sse"}
# The floor each server is held against: the same HTTP server under the bare consumer.
FLOOR_OF = {
    "ours-daphne": "floor-daphne",
    "ours-unguarded-daphne": "floor-daphne",
    "floor-daphne": "floor-daphne",
    "ours-uvicorn": "floor-uvicorn",
    "sdk-http": "floor-uvicorn",
    "sdk-stateless": "floor-uvicorn",
    "sdk-sse": "floor-uvicorn",
    "floor-uvicorn": "floor-uvicorn",
}
TARGET_USERS = 32
OTHER_LOAD_WARNING = 0.15  # cores busy with other work during a window


def progress_line(row: dict) -> str:
    if "failed" in row:
        last_line = row["failed"].strip().splitlines()[-1:]
        return f"{row['transport']:4} {row['users']:>3} {row['server']:22} FAILED: {last_line}"
    return (
        f"{row['transport']:4} {row['users']:>3} {row['server']:22} {row['throughput']:8.0f}/s "
        f"p50 {row['p50_ms']:6.1f} p99 {row['p99_ms']:6.1f} ms  srv {row['server_cpu'] or 0:.2f} "
        f"gen {row['client_cpu']:.2f} other {row['other_cpu']:.2f} cores  err {row['errors']}"
    )


# -- aggregation ------------------------------------------------------------------------------
class Stat:
    """Median, min and max of one figure across repeats."""

    def __init__(self, values):
        values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
        self.n = len(values)
        self.mid = median(values) if values else math.nan
        self.lo = min(values) if values else math.nan
        self.hi = max(values) if values else math.nan

    def fmt(self, digits=0, scale=1.0) -> str:
        if not self.n:
            return "–"
        f = f"{{:,.{digits}f}}"
        return f"{f.format(self.mid * scale)} ({f.format(self.lo * scale)}–{f.format(self.hi * scale)})"


def _cells(rows):
    cells = {}
    for row in rows:
        if "failed" not in row:
            cells.setdefault((row["transport"], row["users"], row["server"]), []).append(row)
    return cells


def _stat(runs, key) -> Stat:
    return Stat([r.get(key) for r in runs])


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b and not math.isnan(a) and not math.isnan(b) else "–"


# -- Markdown -----------------------------------------------------------------------------------
def calls_table(rows) -> list[str]:
    cells = _cells(rows)
    lines = [
        "| transport | users | server | tools/call/s | p50 ms | p99 ms | RSS MiB | × SDK | × floor | errors |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = list(LABELS)

    def position(item):
        transport, users, server = item[0]
        return list(TRANSPORTS).index(transport), users, order.index(server)

    for (transport, users, server), runs in sorted(cells.items(), key=position):
        throughput = _stat(runs, "throughput")
        reference = cells.get((transport, users, REFERENCE[transport]))
        floor = cells.get((transport, users, FLOOR_OF[server]))
        vs_ref = _ratio(throughput.mid, _stat(reference, "throughput").mid) if reference else "–"
        vs_floor = _ratio(throughput.mid, _stat(floor, "throughput").mid) if floor else "–"
        errors = sum(r["errors"] for r in runs)
        lines.append(
            f"| {TRANSPORTS[transport]} | {users} | {LABELS[server]} | {throughput.fmt()} "
            f"| {_stat(runs, 'p50_ms').fmt(1)} | {_stat(runs, 'p99_ms').fmt(1)} "
            f"| {_stat(runs, 'rss_kib').fmt(0, 1 / 1024)} | {vs_ref} | {vs_floor} | {errors} |"
        )
    return lines


def idle_table(rows) -> list[str]:
    lines = [
        "| server | stream held open | KiB per idle session | sessions open | RSS before → after (MiB) |",
        "|---|---|---:|---:|---|",
    ]
    for row in rows:
        if "failed" in row:
            lines.append(f"| {LABELS[row['server']]} | {STREAMS[row['stream']]} | failed | – | – |")
            continue
        lines.append(
            f"| {LABELS[row['server']]} | {STREAMS[row['stream']]} | {row['kib_per_session']:.1f} | {row['streams']:,} "
            f"| {row['rss_before_kib'] / 1024:.0f} → {row['rss_after_kib'] / 1024:.0f} |"
        )
    return lines


def guard_lines(rows) -> tuple[list[str], float | None]:
    cells = _cells(rows)
    guarded = cells.get(("http", TARGET_USERS, "ours-daphne"))
    unguarded = cells.get(("http", TARGET_USERS, "ours-unguarded-daphne"))
    if not guarded or not unguarded:
        return [], None
    g, u = _stat(guarded, "throughput"), _stat(unguarded, "throughput")
    cost = 1 - g.mid / u.mid
    lines = [
        "| Streamable HTTP, 32 users, daphne | tools/call/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
        f"| with the token guard | {g.fmt()} | {_stat(guarded, 'p50_ms').fmt(1)} | {_stat(guarded, 'p99_ms').fmt(1)} |",
        f"| without it (`bench/unguarded_asgi.py`) | {u.fmt()} | {_stat(unguarded, 'p50_ms').fmt(1)} "
        f"| {_stat(unguarded, 'p99_ms').fmt(1)} |",
        "",
        f"Token guard cost: {cost * 100:.1f}% of throughput (median of each).",
    ]
    return lines, cost


def scale_out_lines(rows) -> tuple[list[str], float | None]:
    """The scale-out table and a model of N workers; with the ratio of CPU time per call, two
    workers against one at the same load per worker (None without both)."""
    by_run = {}
    for row in rows:
        if "failed" not in row:
            by_run.setdefault((row["workers"], row["users"]), []).append(row)
    if not by_run:
        return [], None
    one = _stat(by_run.get((1, max(users for _, users in by_run)), []), "throughput").mid
    lines = [
        "| workers (nginx, Redis, PostgreSQL) | users | tools/call/s | p50 ms | p99 ms | × 1 worker "
        "| workers' CPU ms per call | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (workers, users), runs in sorted(by_run.items()):
        t = _stat(runs, "throughput")
        lines.append(
            f"| {workers} | {users} | {t.fmt()} | {_stat(runs, 'p50_ms').fmt(1)} "
            f"| {_stat(runs, 'p99_ms').fmt(1)} "
            f"| {_ratio(t.mid, one)} | {_stat(runs, 'cpu_ms_per_call').fmt(2)} | {sum(r['errors'] for r in runs)} |"
        )
    lines += ["", *_operations_lines(by_run)]
    cpu = {key: _stat(runs, "cpu_ms_per_call").mid for key, runs in by_run.items()}
    # Two workers share the users: each carries half, so one worker at half the users is the same load.
    pairs = [(cpu[2, users], cpu.get((1, users // 2))) for workers, users in cpu if workers == 2]
    pairs = [(two, alone) for two, alone in pairs if alone]
    return lines, (pairs[0][0] / pairs[0][1] if pairs else None)


def _operations_lines(by_run) -> list[str]:
    """Redis commands and database work per call, by run (workers, users): the model of N workers."""
    names = sorted(
        {("Redis", n) for runs in by_run.values() for r in runs for n in r.get("redis_per_call", {})}
        | {("database", n) for runs in by_run.values() for r in runs for n in r.get("database_per_call", {})}
    )
    if not names:
        return []
    keys = sorted(by_run)
    lines = [
        "Per call (every call of each run, warm-up included; median of the repeats):",
        "",
        "| operation | " + " | ".join(f"{w} worker{'s' if w > 1 else ''}, {u} users" for w, u in keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for service, name in names:
        key = "redis_per_call" if service == "Redis" else "database_per_call"
        cells = [Stat([r.get(key, {}).get(name, 0.0) for r in by_run[k]]).mid for k in keys]
        lines.append(f"| {service} `{name}` | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    return lines


# The targets: each a ratio against the SDK reference in the same cell.
THROUGHPUT_TARGETS = {  # (transport, server): minimum × SDK throughput at TARGET_USERS users
    ("stateless", "ours-daphne"): 1.2,
    ("stateless", "ours-uvicorn"): 1.8,
    ("http", "ours-daphne"): 1.0,
    ("http", "ours-uvicorn"): 1.5,
    ("sse", "ours-daphne"): 1.0,
    ("sse", "ours-uvicorn"): 1.5,
}
ONE_USER_P50 = 1.3  # at most this × the SDK's p50, one user, each era
IDLE_KIB = {"sse": 40, "get": 40, "listen": 30}  # per idle session with its stream, or listen stream
CPU_PER_CALL_SPREAD = 0.10  # two workers' CPU time per call within this of one worker's


def targets_table(results, guard_cost, cpu_ratio) -> list[str]:
    cells = _cells(results["calls"])

    def mid(transport, users, server, key):
        runs = cells.get((transport, users, server))
        return _stat(runs, key).mid if runs else math.nan

    rows = []
    for (transport, server), minimum in THROUGHPUT_TARGETS.items():
        ref = REFERENCE[transport]
        ours, theirs = (mid(transport, TARGET_USERS, s, "throughput") for s in (server, ref))
        rows.append(
            (
                f"{TRANSPORTS[transport]}, {LABELS[server].split(', ')[1]}, {TARGET_USERS} users: "
                f"throughput ≥ {minimum:g}x SDK",
                f"{ours / theirs:.2f}x",
                ours / theirs >= minimum,
            )
        )
        ours_p99, ref_p99 = mid(transport, TARGET_USERS, server, "p99_ms"), mid(transport, TARGET_USERS, ref, "p99_ms")
        rows.append(
            (
                f"{TRANSPORTS[transport]}, {LABELS[server].split(', ')[1]}, {TARGET_USERS} users: p99 no worse than SDK",
                f"{ours_p99:.1f} vs {ref_p99:.1f} ms",
                ours_p99 <= ref_p99,
            )
        )
    for transport in ("http", "stateless"):
        ref_p50 = mid(transport, 1, REFERENCE[transport], "p50_ms")
        for server in ("ours-daphne", "ours-uvicorn"):
            p50 = mid(transport, 1, server, "p50_ms")
            rows.append(
                (
                    f"{TRANSPORTS[transport]}, {LABELS[server].split(', ')[1]}, 1 user: p50 ≤ {ONE_USER_P50:g}x SDK",
                    f"{p50:.2f} vs {ref_p50:.2f} ms ({p50 / ref_p50:.2f}x)",
                    p50 / ref_p50 <= ONE_USER_P50,
                )
            )
    for row in results["idle"]:
        if row["server"].startswith("ours") and "kib_per_session" in row:
            kib, limit = row["kib_per_session"], IDLE_KIB[row["stream"]]
            rows.append((f"idle {STREAMS[row['stream']]} stream: ≤ {limit} KiB", f"{kib:.1f} KiB", kib <= limit))
    if guard_cost is not None:
        rows.append(("token guard: ≤ 10% of throughput", f"{guard_cost * 100:.1f}%", guard_cost <= 0.10))
    if cpu_ratio is not None:
        rows.append(
            (
                f"scale-out: CPU per call, 2 workers within {CPU_PER_CALL_SPREAD:.0%} of one at the same load per worker",
                f"{cpu_ratio:.2f}x",
                abs(cpu_ratio - 1) <= CPU_PER_CALL_SPREAD,
            )
        )
    lines = ["| target | measured | met |", "|---|---:|:---:|"]
    lines += [f"| {what} | {value} | {'yes' if ok else '**no**'} |" for what, value, ok in rows]
    return lines


def markdown(results, heading_level: int = 1) -> str:
    """The report; its title is a heading of `heading_level`, its sections one level below."""
    title, section = "#" * heading_level, "#" * (heading_level + 1)
    meta = results["meta"]
    busy = [r for r in results["calls"] if "failed" not in r and r.get("other_cpu", 0) > OTHER_LOAD_WARNING]
    guard, guard_cost = guard_lines(results["calls"])
    scale, cpu_ratio = scale_out_lines(results.get("scale_out", []))
    pinning = (
        "each server pinned to core 0, the load generator to core 1" if meta["pinned"] else "nothing pinned (one core)"
    )
    out = [
        f"{title} Benchmark, {meta['started']}",
        "",
        f"{meta['cpus']} × {meta['cpu_model']}, Python {meta['python']}, "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
        + f"; loopback, one worker per server, {pinning}; {meta['repeats']} repeats of {meta['window_s']:g} s "
        f"(after {meta['warmup_s']:g} s of warm-up), servers alternated"
        + (
            f", each server first loaded for {meta['first_warmup_s'] + 1:g} s on each transport, unmeasured"
            if meta.get("first_warmup_s")
            else ""
        )
        + f"; whole run {meta.get('duration_s', '?')} s. "
        "Figures are the median of the repeats, with (min–max). × SDK: throughput against the SDK reference "
        "in the same cell; × floor: against the bare Channels consumer under the same HTTP server "
        "(uvicorn for the SDK).",
        "",
        f"{section} tools/call",
        "",
        *calls_table(results["calls"]),
        "",
        f"{section} Memory per idle session (1,000 sessions, each with its stream open)",
        "",
        *idle_table(results["idle"]),
        "",
    ]
    if guard:
        out += [f"{section} Token guard", "", *guard, ""]
    if scale:
        out += [
            f"{section} Scale-out, 2026-07-28 stateless (nothing pinned: the workers, nginx, Redis, PostgreSQL "
            "and the load generator share the cores)",
            "",
            *scale,
            "",
        ]
    out += [f"{section} Targets", "", *targets_table(results, guard_cost, cpu_ratio), ""]
    if busy:
        worst = max(r["other_cpu"] for r in busy)
        out += [
            f"Note: other processes kept up to {worst:.2f} cores busy during {len(busy)} of the runs; "
            "their spread shows it.",
            "",
        ]
    return "\n".join(out)


# -- plot -----------------------------------------------------------------------------------------
def plot(results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = _cells(results["calls"])
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), sharey=True)
    # One colour per server; the SDK's reference for each transport shares one.
    shown = [s for s in LABELS if s not in ("ours-unguarded-daphne", "sdk-sse", "sdk-stateless")]
    for ax, transport in zip(axes, TRANSPORTS, strict=True):
        for index, server in enumerate(shown):
            name = REFERENCE[transport] if server == "sdk-http" else server
            users = sorted(u for (t, u, s) in cells if t == transport and s == name)
            if not users:
                continue
            for key, style in (("p50_ms", "-"), ("p99_ms", "--")):
                ys = [_stat(cells[(transport, u, name)], key).mid for u in users]
                label = LABELS[server] if key == "p50_ms" and transport == "http" else None
                ax.plot(users, ys, style, marker="o", color=f"C{index}", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([1, 32, 256], labels=["1", "32", "256"])
        ax.set_xlabel("concurrent users (each with its own session or connection)")
        ax.set_title(f"tools/call add over {TRANSPORTS[transport]}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("latency, ms (solid: p50, dashed: p99)")
    fig.legend(loc="lower center", ncol=len(shown), fontsize=8, frameon=False)
    fig.suptitle(f"Benchmark {results['meta']['started']}: median of {results['meta']['repeats']} repeats")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results, directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = results["meta"]["stamp"]
    text = markdown(results)
    (directory / f"{stamp}.md").write_text(text)
    (directory / f"{stamp}.json").write_text(json.dumps(results, indent=1))
    try:
        plot(results, directory / f"{stamp}.png")
    except ImportError:
        pass  # matplotlib is a bench requirement; the table stands without the plot
    return text


# -- docs/performance.md ------------------------------------------------------------------------
def _repo_path(path: Path) -> str:
    """`path` as the docs name it: relative to the repository when inside it."""
    path = Path(path).resolve()
    try:
        return path.relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def load_check(results) -> str:
    """One sentence on whether the servers, not the load generator, were what was measured."""
    runs = [r for r in results["calls"] if "failed" not in r and r.get("server_cpu") is not None]
    busy = [r["server_cpu"] for r in runs if r["users"] >= TARGET_USERS]
    generator = [r["client_cpu"] for r in runs if r.get("client_cpu") is not None]
    if not busy or not generator:
        return ""
    return (
        f"Load check: at {TARGET_USERS} users and more, each server kept {min(busy):.2f}–{max(busy):.2f} "
        f"of its core busy; the load generator used at most {max(generator):.2f} of its own."
    )


def docs_section(results, source: Path) -> str:
    """What goes between the markers of docs/performance.md: where the figures come from,
    `markdown(results)` with its headings under the page's "Latest run", the load check and
    the plot."""
    json_name = _repo_path(source)
    stamp = results["meta"]["stamp"]
    lines = [
        f"Written by `make bench` from `{json_name}`; rebuilt from that file with "
        f"`python bench/report.py --docs {json_name}`. Do not edit between the markers.",
        "",
        markdown(results, heading_level=3).rstrip("\n"),
        "",
    ]
    check = load_check(results)
    if check:
        lines += [check, ""]
    plot_file = Path(source).resolve().with_suffix(".png")
    if plot_file.exists() and plot_file.is_relative_to(REPO):
        relative = Path(os.path.relpath(plot_file, DOCS_PAGE.parent)).as_posix()
        lines += [f"![Latency against concurrency, run {stamp}]({relative})", ""]
    return "\n".join(lines)


PAGE_SKELETON = f"""# Performance

## Latest run

{DOCS_BEGIN}
{DOCS_END}
"""


def write_docs(results, source: Path, page: Path = DOCS_PAGE) -> Path:
    """Replace what lies between the markers of `page` (created if missing) with
    `docs_section(results, source)`; the rest of the page is left as it is."""
    text = page.read_text() if page.exists() else PAGE_SKELETON
    if DOCS_BEGIN not in text and DOCS_END not in text:
        text = text.rstrip("\n") + f"\n\n## Latest run\n\n{DOCS_BEGIN}\n{DOCS_END}\n"
    begin, end = text.find(DOCS_BEGIN), text.find(DOCS_END)
    if begin < 0 or end < begin or text.count(DOCS_BEGIN) != 1 or text.count(DOCS_END) != 1:
        raise ValueError(f"{page}: expected one {DOCS_BEGIN!r} line followed by one {DOCS_END!r} line")
    block = f"{DOCS_BEGIN}\n{docs_section(results, source).rstrip()}\n{DOCS_END}"
    page.parent.mkdir(parents=True, exist_ok=True)
    partial = page.with_name(page.name + ".tmp")
    partial.write_text(text[:begin] + block + text[end + len(DOCS_END) :])
    partial.replace(page)
    return page


def headline(results) -> str:
    """The README's one line: the headline ratios against the SDK's server in the same run."""
    cells = _cells(results["calls"])

    def ratio(transport, users, server, key="throughput"):
        ours, ref = cells.get((transport, users, server)), cells.get((transport, users, REFERENCE[transport]))
        if not ours or not ref:
            return "–"
        return f"{_stat(ours, key).mid / _stat(ref, key).mid:.2f}x"

    return (
        f"Speed against the `mcp` SDK's own server, same machine and run (`make bench`, {results['meta']['started']}, "
        f"[docs/performance.md](docs/performance.md)): at {TARGET_USERS} users, 2026-07-28 stateless calls "
        f"{ratio('stateless', TARGET_USERS, 'ours-daphne')} its throughput under daphne, "
        f"{ratio('stateless', TARGET_USERS, 'ours-uvicorn')} under uvicorn; 2025-11-25 sessions "
        f"{ratio('http', TARGET_USERS, 'ours-daphne')} and {ratio('http', TARGET_USERS, 'ours-uvicorn')}; "
        f"one user waits {ratio('stateless', 1, 'ours-daphne', 'p50_ms')} its median time (2026, daphne), "
        f"{ratio('http', 1, 'ours-daphne', 'p50_ms')} in a 2025 session."
    )


def write_readme(results, page: Path = README) -> Path:
    """Replace the README's headline line (between its two markers) with ``headline(results)``."""
    text = page.read_text()
    begin, end = text.find(HEADLINE_BEGIN), text.find(HEADLINE_END)
    if begin < 0 or end < begin:
        raise ValueError(f"{page}: expected {HEADLINE_BEGIN!r} followed by {HEADLINE_END!r}")
    partial = page.with_name(page.name + ".tmp")
    partial.write_text(text[: begin + len(HEADLINE_BEGIN)] + headline(results) + text[end:])
    partial.replace(page)
    return page


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Rebuild the generated section of docs/performance.md from a results file."
    )
    parser.add_argument(
        "--docs", type=Path, required=True, metavar="JSON", help="a benchmark results file, bench/results/<stamp>.json"
    )
    parser.add_argument("--page", type=Path, default=DOCS_PAGE, help="the page to update (docs/performance.md)")
    args = parser.parse_args()
    results = json.loads(args.docs.read_text())
    if not isinstance(results, dict) or "calls" not in results or "meta" not in results:
        parser.error(f"{args.docs} is not a `make bench` results file (a soak file is not one)")
    page = write_docs(results, args.docs, args.page)
    print(f"{_repo_path(page)}: generated section rebuilt from {_repo_path(args.docs)}")
    if args.page == DOCS_PAGE:
        print(f"{_repo_path(write_readme(results))}: headline line rebuilt")


if __name__ == "__main__":
    main()
