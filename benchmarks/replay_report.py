"""Figures, tables and the plot of the replay benchmark (``replay.py``), from per-event records.

Every function here works on plain arrays of per-event results, so the same code reports the
served variants and the client-side popularity baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.eval.metrics import ndcg_of_rank

K = 20
HISTORY_BUCKETS = ((0, 0, "0"), (1, 4, "1-4"), (5, 19, "5-19"), (20, 10**9, "20+"))
DAY = 86_400.0
# days since the item's first positive in the stream; None: no earlier positive at all
AGE_BUCKETS = (
    (None, None, "first positive"),
    (0.0, 7.0, "< 1 week"),
    (7.0, 30.0, "1-4 weeks"),
    (30.0, 90.0, "1-3 months"),
    (90.0, float("inf"), "> 3 months"),
)


def hits_of_rank(ranks: np.ndarray) -> np.ndarray:
    ranks = np.asarray(ranks)
    return ((ranks >= 1) & (ranks <= K)).astype(float)


def bootstrap(values: np.ndarray, resamples: int, seed: int = 0) -> tuple[float, float]:
    """The 95% percentile bootstrap interval of the mean of ``values``."""
    if len(values) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    means = values[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return (round(float(low), 4), round(float(high), 4))


def ratio_interval(
    ours: np.ndarray, base: np.ndarray, resamples: int, seed: int = 0
) -> tuple[float, float]:
    """95% paired bootstrap interval of ``mean(ours) / mean(base)`` over the same events."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(ours), size=(resamples, len(ours)))
    top, bottom = ours[picks].mean(axis=1), base[picks].mean(axis=1)
    ratios = top[bottom > 0] / bottom[bottom > 0]
    if len(ratios) == 0:
        return (float("nan"), float("nan"))
    low, high = np.percentile(ratios, [2.5, 97.5])
    return (round(float(low), 3), round(float(high), 3))


def summary(ranks: np.ndarray, resamples: int) -> dict[str, Any]:
    """hit@K and NDCG@K with their bootstrap intervals."""
    hits, gains = hits_of_rank(ranks), ndcg_of_rank(ranks, K)
    return {
        "n": len(ranks),
        "hit": round(float(hits.mean()), 4) if len(ranks) else float("nan"),
        "hit_ci95": bootstrap(hits, resamples),
        "ndcg": round(float(gains.mean()), 4) if len(ranks) else float("nan"),
        "ndcg_ci95": bootstrap(gains, resamples),
    }


def history_bucket(count: int) -> str:
    for low, high, name in HISTORY_BUCKETS:
        if low <= count <= high:
            return name
    raise ValueError(f"history count {count} is negative")


def age_bucket(age_days: float | None) -> str:
    if age_days is None:
        return AGE_BUCKETS[0][2]
    for low, high, name in AGE_BUCKETS[1:]:
        if low is not None and high is not None and low <= age_days < high:
            return name
    raise ValueError(f"item age {age_days} days is negative")


def by_bucket(ranks: np.ndarray, buckets: Sequence[str], names: Sequence[str]) -> dict[str, Any]:
    """hit@K and NDCG@K per bucket (events whose bucket is that name)."""
    labels = np.asarray(buckets)
    out = {}
    for name in names:
        chosen = ranks[labels == name]
        out[name] = {
            "n": len(chosen),
            "hit": round(float(hits_of_rank(chosen).mean()), 4) if len(chosen) else None,
            "ndcg": round(float(ndcg_of_rank(chosen, K).mean()), 4) if len(chosen) else None,
        }
    return out


def windows(ranks: np.ndarray, n_windows: int) -> list[dict[str, Any]]:
    """hit@K and NDCG@K over consecutive, equal-count windows of the evaluation events."""
    out = []
    for part in np.array_split(np.arange(len(ranks)), n_windows):
        if len(part) == 0:
            continue
        chosen = ranks[part]
        out.append(
            {
                "first": int(part[0]),
                "last": int(part[-1]),
                "hit": round(float(hits_of_rank(chosen).mean()), 4),
                "ndcg": round(float(ndcg_of_rank(chosen, K).mean()), 4),
            }
        )
    return out


def targets(results: dict[str, Any], baseline: str = "popularity") -> dict[str, Any]:
    """The issue's targets for every hybrid variant: overall hit ≥ 1.5x the baseline's, and
    ≥ the baseline's in every history bucket that has events."""
    base = results[baseline]
    out = {}
    for name, res in results.items():
        if not name.startswith("hybrid") or "overall" not in res:
            continue
        ratio = res["overall"]["hit"] / base["overall"]["hit"] if base["overall"]["hit"] else None
        buckets = {
            b: res["history"][b]["hit"] >= base["history"][b]["hit"]
            for b in res["history"]
            if res["history"][b]["n"]
        }
        out[name] = {
            "hit_ratio": None if ratio is None else round(ratio, 3),
            "overall_met": ratio is not None and ratio >= 1.5,
            "buckets_met": buckets,
            "met": ratio is not None and ratio >= 1.5 and all(buckets.values()),
        }
    return out


def plot(results: dict[str, Any], path: Path, title: str) -> None:
    """hit@K and NDCG@K per evaluation window, one line per variant, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for name, res in results.items():
        if "windows" not in res:
            continue
        x = [(w["first"] + w["last"]) / 2 for w in res["windows"]]
        for ax, metric in zip(axes, ("hit", "ndcg")):
            (line,) = ax.plot(x, [w[metric] for w in res["windows"]], marker="o", label=name)
            swaps = version_changes(res.get("per_event", {}).get("model_version", []))
            ax.plot(swaps, [0.0] * len(swaps), "^", color=line.get_color(), markersize=7)
    for ax, metric in zip(axes, (f"hit@{K}", f"NDCG@{K}")):
        ax.set_xlabel("evaluation event (window centre)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, title="▲ a new model version served", title_fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def version_changes(versions: Sequence[Any]) -> list[int]:
    """Evaluation events answered by a different model version than the one before."""
    return [n for n in range(1, len(versions)) if versions[n] != versions[n - 1]]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pair(figures: dict[str, Any]) -> str:
    """``p50 / p99`` in ms with one decimal."""
    return f"{_fmt(figures.get('p50_ms'), 1)} / {_fmt(figures.get('p99_ms'), 1)}"


def _interval(pair: Sequence[float]) -> str:
    return f"[{pair[0]:.3f}, {pair[1]:.3f}]"


def overall_table(results: dict[str, Any]) -> list[str]:
    lines = [
        f"| variant | hit@{K} | 95% CI | NDCG@{K} | 95% CI | hit vs popularity [95% CI] |",
        "|---|---:|---|---:|---|---|",
    ]
    for name, res in results.items():
        if "overall" not in res:
            lines.append(f"| {name} | skipped: {res.get('skipped', '?')} | | | | |")
            continue
        o = res["overall"]
        ratio = res.get("hit_vs_popularity") if name != "popularity" else None
        vs = f"{ratio['ratio']:.2f}x {_interval(ratio['ci95'])}" if ratio else "-"
        lines.append(
            f"| {name} | {o['hit']:.3f} | {_interval(o['hit_ci95'])} | {o['ndcg']:.3f} | "
            f"{_interval(o['ndcg_ci95'])} | {vs} |"
        )
    return lines


def bucket_table(results: dict[str, Any], section: str, metric: str = "hit") -> list[str]:
    names = next(list(r[section]) for r in results.values() if section in r)
    counts = next(r[section] for r in results.values() if section in r)
    head = " | ".join(f"{n} (n={counts[n]['n']})" for n in names)
    lines = [f"| variant | {head} |", "|---|" + "---:|" * len(names)]
    for name, res in results.items():
        if section in res:
            cells = " | ".join(_fmt(res[section][n][metric]) for n in names)
            lines.append(f"| {name} | {cells} |")
    return lines


def service_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| variant | refits finished (begun in evaluation) | refit wall s: first / median / max"
        " | recommend p50 / p99 ms"
        " | ... while a refit runs (n) | interaction p50 / p99 ms | peak RSS MiB |",
        "|---|---:|---|---|---|---|---:|",
    ]
    for name, res in results.items():
        if "latency" not in res:
            continue
        lat, ref = res["latency"], res["refit"]
        during = lat["recommend_during_refit"]
        walls = ref.get("wall_s") or []
        first = ref.get("first_wall_s")
        wall_text = "-"
        if walls or first is not None:
            wall_text = (
                f"{_fmt(first, 0)} / {_fmt(float(np.median(walls)) if walls else None, 0)} / "
                f"{_fmt(max(walls) if walls else None, 0)}"
            )
        lines.append(
            f"| {name} | {_fmt(ref.get('count'))} ({_fmt(ref.get('in_evaluation'))}) | "
            f"{wall_text} | {_pair(lat['recommend'])} | {_pair(during)} ({during['n']}) | "
            f"{_pair(lat['interaction'])} | {_fmt(res['peak_rss_mb'], 0)} |"
        )
    return lines


def history_line(history: dict[str, Any]) -> str:
    reused = " (its database reused from an earlier run's)" if history.get("reused_from") else ""
    return (
        f"The catalogue ({history['catalogue_s']} s{reused}) and the warm-up history "
        f"({history['warmup_s']} s) were sent over HTTP to a zero-shot server with refits off; "
        "every variant's server started from its own copy of that database."
    )


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: overall, buckets, service figures, targets."""
    results = report["results"]
    parts = [
        f"# Replay: {report['dataset']} ({report['date']})",
        "",
        f"Command: `{report['command']}`",
        "",
        report["stream"]["description"],
        history_line(report["history_database"]),
        "",
        f"Load average at start {report['load_average']['start']}, "
        f"at end {report['load_average']['end']} ({report['machine']}).",
        "",
        "## Overall",
        "",
        *overall_table(results),
        "",
        f"## hit@{K} by the user's history before the request (positives)",
        "",
        *bucket_table(results, "history"),
        "",
        f"NDCG@{K}:",
        "",
        *bucket_table(results, "history", "ndcg"),
        "",
        f"## hit@{K} by item age (days since the item's first positive in the stream)",
        "",
        *bucket_table(results, "item_age"),
        "",
        f"NDCG@{K}:",
        "",
        *bucket_table(results, "item_age", "ndcg"),
        "",
        "## Service",
        "",
        *service_table(results),
        "",
        "## Targets (refitting hybrid vs popularity)",
        "",
    ]
    for name, t in report["targets"].items():
        parts.append(
            f"- {name}: hit ratio {_fmt(t['hit_ratio'])} (target 1.5: "
            f"{'met' if t['overall_met'] else 'not met'}); history buckets at or above "
            f"popularity: {t['buckets_met']} -> {'MET' if t['met'] else 'NOT MET'}"
        )
    if not report["targets"]:
        parts.append("- not judged: no hybrid variant, or no popularity, in this run")
    return "\n".join(parts) + "\n"
