"""The soak run's report: errors, memory and FDs over time, whether they level off, and a plot.

`write(results, directory)` writes `soak-<stamp>.md`, `.json` (every sample)
and `.png`, and returns the Markdown and the verdicts.

Levelling off, as the report defines it: the load phase is cut into thirds
and each figure's median taken in each. A figure levels off when its rise from
the middle to the last third is at most a quarter of its rise from the first
to the middle third (growth has slowed to a quarter or less), or no more than
its own noise: twice the standard deviation of its samples around a straight
line fitted through the middle and last thirds (the trend taken out, so that a
steady leak is no noise), and at least FLOOR (1 MiB, 2 FDs). A figure that keeps rising as fast as it
started, a leak, does not level off; one that only moves up and down with the
sessions coming and going does.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import median, pstdev

SLOWDOWN = 0.25  # the late rise, at most this share of the early rise
FLOOR = {"rss_mib": 1.0, "fds": 2.0}  # a rise this small is flat whatever the noise
FIGURES = {"rss_mib": ("resident memory", "MiB"), "fds": ("open file descriptors", "")}
PER_MINUTE_FROM = 5.0  # runs of this many minutes or more get one table row per minute


def _scatter_around_trend(samples: list[dict], key: str) -> float:
    """Standard deviation of `key` around its least-squares line against time."""
    xs, ys = [s["t"] for s in samples], [s[key] for s in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread if spread else 0.0
    return pstdev(y - (mean_y + slope * (x - mean_x)) for x, y in zip(xs, ys, strict=True))


def level_off(samples: list[dict]) -> dict:
    """For each figure: its median in each third of the load, the rises between them, and the verdict."""
    load = [s for s in samples if s["phase"] == "load"]
    if not load:
        return {}
    end = load[-1]["t"]
    thirds = [
        [s for s in load if s["t"] < end / 3],
        [s for s in load if end / 3 <= s["t"] < end * 2 / 3],
        [s for s in load if s["t"] >= end * 2 / 3],
    ]
    verdicts = {}
    for key in FIGURES:
        if any(len(third) < 2 for third in thirds):
            verdicts[key] = {"levels_off": None}
            continue
        levels = [median(s[key] for s in third) for third in thirds]
        early, late = levels[1] - levels[0], levels[2] - levels[1]
        noise = 2 * _scatter_around_trend(thirds[1] + thirds[2], key)
        allowed = max(SLOWDOWN * early, noise, FLOOR[key])
        verdicts[key] = {
            "medians": [round(level, 1) for level in levels],
            "early_rise": round(early, 1),
            "late_rise": round(late, 1),
            "noise": round(noise, 1),
            "allowed": round(allowed, 1),
            "levels_off": late <= allowed,
            "start": load[0][key],
            "end": load[-1][key],
            "peak": max(s[key] for s in load),
        }
    return verdicts


# -- Markdown -----------------------------------------------------------------------------------
def _rows(samples: list[dict], minutes: float) -> list[dict]:
    """One row per sample, or per minute in long runs (figures at the minute's last sample;
    calls/s over the minute; p50 the median of the samples', p99 the worst)."""
    load = [s for s in samples if s["phase"] == "load"]
    before = [dict(s, label="before the load") for s in samples if s["phase"] == "before"]
    after = [dict(s, label="after the load (sessions closed)") for s in samples if s["phase"] == "after"]
    if minutes < PER_MINUTE_FROM:
        return before + [dict(s, label=f"{s['t']:.0f} s") for s in load] + after
    rows, bucket, start = [], [], 0.0
    for sample in load:
        bucket.append(sample)
        if sample["t"] >= start + 60 or sample is load[-1]:
            span = sample["t"] - start
            p50s = [s["p50_ms"] for s in bucket if s["p50_ms"] is not None]
            p99s = [s["p99_ms"] for s in bucket if s["p99_ms"] is not None]
            rows.append(
                dict(
                    sample,
                    label=f"{sample['t'] / 60:.0f} min",
                    calls_per_s=round(sum(s["calls"] for s in bucket) / span, 1) if span else 0.0,
                    p50_ms=median(p50s) if p50s else None,
                    p99_ms=max(p99s) if p99s else None,
                    **{key: sum(s[key] for s in bucket) for key in ("refreshes", "reconnects", "resumes", "errors")},
                )
            )
            bucket, start = [], sample["t"]
    return before + rows + after


def _ms(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def _row(row: dict) -> str:
    figures = f"| {row['label']} | {row['rss_mib']:.1f} | {row['fds']} | {row['sessions']} "
    if row["phase"] != "load":  # at rest: what the server holds; the rates belong to the load
        return figures + "| – | – | – | – | – | – | – | – |"
    return figures + (
        f"| {row['calls_per_s']:.1f} | {_ms(row['p50_ms'])} | {_ms(row['p99_ms'])} | {row['server_cpu']:.2f} "
        f"| {row['refreshes']} | {row['reconnects']} | {row['resumes']} | {row['errors']} |"
    )


def markdown(results: dict, verdicts: dict) -> str:
    meta, samples, errors = results["meta"], results["samples"], results["errors"]
    load = [s for s in samples if s["phase"] == "load"]
    calls = sum(s["calls"] for s in load)
    seconds = load[-1]["t"] if load else 0
    out = [
        f"# Soak run, {meta['started']}",
        "",
        f"{meta['minutes']:g} min, {meta['sessions']} concurrent sessions (half Streamable HTTP, half HTTP+SSE) against "
        f"one daphne worker of this server ({'pinned to core 0, the clients to core 1' if meta['pinned'] else 'not pinned'}). "
        f"Each client calls add, calculate and whoami in turn with a random think time of mean {meta['think_s']:g} s, "
        f"ends its session and opens a new one after a mean {meta['session_s']:g} s, refreshes its token (rotation) "
        f"every {meta['refresh_s']:g} s on average, and {meta['resume_fraction']:.0%} of the Streamable HTTP sessions drop "
        f"their GET stream and resume it with Last-Event-ID. Samples every {meta['sample_s']:g} s.",
        "",
        f"**Errors: {sum(errors.values())}.** {calls:,} tool calls ({calls / seconds if seconds else 0:,.0f}/s), "
        f"{sum(s['refreshes'] for s in load):,} token refreshes, {sum(s['reconnects'] for s in load):,} reconnects, "
        f"{sum(s['resumes'] for s in load):,} stream resumes.",
        "",
    ]
    if errors:
        out += (
            ["| error | count |", "|---|---:|"] + [f"| {e.replace('|', '/')} | {n} |" for e, n in errors.items()] + [""]
        )
    out += [
        "| time | RSS MiB | open FDs | sessions | tools/call/s | p50 ms | p99 ms | server CPU | refreshes | reconnects | resumes | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    out += [_row(row) for row in _rows(samples, meta["minutes"])]
    before = next((s for s in samples if s["phase"] == "before"), None)
    after = next((s for s in samples if s["phase"] == "after"), None)
    if before and after:
        out += [
            "",
            f"At rest (no session open), before → after the load: resident memory {before['rss_mib']:.1f} → "
            f"{after['rss_mib']:.1f} MiB, open FDs {before['fds']} → {after['fds']}.",
        ]
    out += [
        "",
        "## Do memory and FDs level off?",
        "",
        f"Each figure's median in each third of the load. It levels off when its rise from the middle to the last "
        f"third is at most {SLOWDOWN:.0%} of its rise from the first to the middle third, or within its noise "
        f"(twice the standard deviation of its samples around a line fitted through the middle and last thirds; "
        f"at least {FLOOR['rss_mib']:g} MiB, {FLOOR['fds']:g} FDs).",
        "",
        "| figure | start → end (peak) | medians by third | early rise | late rise | allowed | levels off |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for key, (name, unit) in FIGURES.items():
        v = verdicts.get(key)
        if not v or v["levels_off"] is None:
            out.append(f"| {name} | – | – | – | – | – | too few samples |")
            continue
        unit_text = f" {unit}" if unit else ""
        out.append(
            f"| {name} | {v['start']:g} → {v['end']:g} ({v['peak']:g}){unit_text} | {' / '.join(f'{m:g}' for m in v['medians'])} "
            f"| {v['early_rise']:+g} | {v['late_rise']:+g} | {v['allowed']:g} | {'yes' if v['levels_off'] else '**no**'} |"
        )
    out += _tracemalloc_section(results.get("tracemalloc"))
    return "\n".join(out) + "\n"


def _tracemalloc_section(traced: dict | None) -> list[str]:
    """What grew inside the server between the tracemalloc snapshots (bench/soak.py --tracemalloc):
    during the load, and what was still held once every session had closed."""
    if not traced:
        return []
    if "load" not in traced:  # a run from before the third snapshot: one comparison only
        traced = {"load": traced}
    out = ["", "## Where memory went (tracemalloc, inside the server)", ""]
    out += _growth_table(
        traced["load"], "Between the snapshot after the warm-up and the one at the end of the load", "at the end"
    )
    if "left" in traced:
        out += [""]
        out += _growth_table(
            traced["left"],
            "Between the snapshot after the warm-up (sessions open) and one after every session closed",
            "after closing",
        )
    return out


def _growth_table(growth: dict, between: str, when: str) -> list[str]:
    if "error" in growth:
        return [growth["error"]]
    out = [
        f"{between} ({growth['minutes_between']:g} min apart), traced allocations changed by "
        f"{growth['total_kib']:+g} KiB in all. The lines that grew most:",
        "",
        f"| where | change KiB | change in blocks | held {when} KiB |",
        "|---|---:|---:|---:|",
    ]
    out += [
        f"| `{row['where']}` | {row['size_diff_kib']:+g} | {row['count_diff']:+d} | {row['size_kib']:g} |"
        for row in growth["top"]
    ]
    for chain in growth.get("chains", []):
        out += ["", f"Call chain of a growth of {chain['size_diff_kib']:+g} KiB:", "", "```", *chain["frames"], "```"]
    return out


# -- plot -----------------------------------------------------------------------------------------
def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    load = [s for s in results["samples"] if s["phase"] == "load"]
    minutes = [s["t"] / 60 for s in load]
    fig, axes = plt.subplots(3, 1, figsize=(10, 8.5), sharex=True)
    panels = [
        ("rss_mib", "resident memory, MiB", "C0"),
        ("fds", "open file descriptors", "C1"),
        ("calls_per_s", "tools/call per second", "C2"),
    ]
    for ax, (key, label, colour) in zip(axes, panels, strict=True):
        ax.plot(minutes, [s[key] for s in load], marker=".", color=colour)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if minutes:
            for third in (minutes[-1] / 3, minutes[-1] * 2 / 3):
                ax.axvline(third, color="grey", linestyle=":", linewidth=1)
    erred = [(s["t"] / 60, s["calls_per_s"]) for s in load if s["errors"]]
    if erred:
        axes[2].scatter(*zip(*erred, strict=True), color="red", zorder=3, label="samples with errors")
        axes[2].legend(loc="lower right", fontsize=8)
    axes[-1].set_xlabel("minutes of load (dotted: the thirds compared for levelling off)")
    meta = results["meta"]
    fig.suptitle(
        f"Soak {meta['started']}: {meta['sessions']} sessions, one daphne worker, "
        f"{sum(results['errors'].values())} errors"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict, directory: Path) -> tuple[str, dict]:
    directory.mkdir(parents=True, exist_ok=True)
    base = directory / f"soak-{results['meta']['stamp']}"
    verdicts = level_off(results["samples"])
    results["levels_off"] = verdicts
    text = markdown(results, verdicts)
    base.with_suffix(".md").write_text(text)
    base.with_suffix(".json").write_text(json.dumps(results, indent=1))
    try:
        plot(results, base.with_suffix(".png"))
    except ImportError:
        pass  # matplotlib is a bench requirement; the table stands without the plot
    return text, verdicts
