"""Benchmark reports: JSON (everything), a Markdown table, PNG plots (matplotlib, Agg)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from coldbrew.bench.runner import ResultRow

COLUMNS = (
    ("ndcg@20", "NDCG@20"),
    ("recall@20", "Recall@20"),
    ("precision@20", "P@20"),
    ("f1@20", "F1@20"),
    ("hit_rate@20", "Hit@20"),
    ("mrr@20", "MRR@20"),
    ("ndcg@10", "NDCG@10"),
    ("recall@10", "Recall@10"),
    ("coverage@20", "Cov@20"),
    ("pop_percentile@20", "Pop%@20"),
)


def write_json(
    path: Path, meta: dict[str, Any], splits: dict[str, Any], rows: list[ResultRow]
) -> None:
    report = {"meta": meta, "splits": splits, "results": [r.to_dict() for r in rows]}
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _fallback(row: ResultRow) -> str:
    parts = []
    if row.fallback_users:
        parts.append(f"{row.fallback_users}/{row.users} users")
    if row.candidates_without_signal:
        parts.append(f"{row.candidates_without_signal}/{row.candidates} items")
    return ", ".join(parts) or "–"


def table(rows: Sequence[ResultRow]) -> str:
    """One Markdown table: a line per model, quality first, then cost."""
    extra = list(dict.fromkeys(m for r in rows for m in r.intervals))
    labels = dict(COLUMNS)
    head = ["model", *[label for _, label in COLUMNS], "NDCG@20 95% CI"]
    head += [f"{labels.get(m, m)} 95% CI" for m in extra]
    head += ["fallback", "fit s", "enc/s", "p50 ms", "p99 ms", "peak MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best = {key: max(r.metrics.get(key, 0.0) for r in rows) for key, _ in COLUMNS[:8]}
    for r in rows:
        cells = [r.model]
        for key, _ in COLUMNS:
            text = _fmt(r.metrics.get(key))
            if key in best and r.metrics.get(key) == best[key] and best[key] > 0:
                text = f"**{text}**"
            cells.append(text)
        cells.append(_interval(r.ndcg20_ci95))
        cells += [_interval(r.intervals.get(m, (math.nan, math.nan))) for m in extra]
        cells.append(_fallback(r))
        cells += [
            _fmt(r.fit_seconds, 1),
            _fmt(r.encode_texts_per_s, 0),
            _fmt(r.latency_ms_p50, 2),
            _fmt(r.latency_ms_p99, 2),
            _fmt(r.peak_rss_mb, 0),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _interval(bounds: tuple[float, float]) -> str:
    return f"[{_fmt(bounds[0], 3)}, {_fmt(bounds[1], 3)}]"


def blend_table(rows: Sequence[ResultRow]) -> str:
    """The blends' weights per group of test users beside their inner validation: NDCG@20 of
    the chosen weights against the best single part's, and the out-of-fold gain the group's own
    search showed over the weights it keeps otherwise (its cell's, pooled over every group; plain
    popularity for new users who revealed nothing): at most a standard error, and the group keeps
    those ("" when no row is a blend)."""
    head = ["model", "users", "test users", "weights", "val queries", "val chosen", "best part"]
    head.append("own search's out-of-fold gain ± SE")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        for g in r.blend or []:
            weights = ", ".join(f"{n} {w:g}" for n, w in g["weights"].items())
            best = f"{g.get('best_part', '–')} {_fmt(g.get('best_part_ndcg'))}"
            gain = f"{_fmt(g.get('oof_gain'))} ± {_fmt(g.get('oof_gain_se'))}"
            cells = [r.model, g["users"], str(g["test_users"]), weights]
            cells += [str(g.get("val_queries", 0)), _fmt(g.get("chosen")), best, gain]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def _with_blend(rows: Sequence[ResultRow]) -> list[str]:
    """:func:`table`, then :func:`blend_table` under a heading when there is one."""
    blend = blend_table(rows)
    if not blend:
        return [table(rows), ""]
    return [
        table(rows),
        "",
        "The blend's weights and its inner validation (NDCG@20):",
        "",
        blend,
        "",
    ]


def curve_table(rows: Sequence[ResultRow], metric: str = "ndcg@20") -> str:
    """Cold-user: a line per model, a column per ``k``."""
    ks = sorted({r.k for r in rows if r.k is not None})
    models = list(dict.fromkeys(r.model for r in rows))
    value = {(r.model, r.k): r.metrics.get(metric) for r in rows}
    users = {r.k: r.users for r in rows}
    left = {r.k: r.left_out_users for r in rows}
    head = ["model", *[f"k={k}" for k in ks]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in models:
        lines.append("| " + " | ".join([m, *[_fmt(value.get((m, k))) for k in ks]]) + " |")
    lines.append("| users (left out) | " + " | ".join(f"{users[k]} ({left[k]})" for k in ks) + " |")
    return "\n".join(lines)


def _source_words(source: dict[str, Any] | None) -> str:
    """Where the code came from, in words (older reports recorded nothing)."""
    if not source or not source.get("commit"):
        return "source commit not recorded"
    changed = " with uncommitted changes" if source.get("dirty") else ""
    return f"source commit `{source['commit'][:12]}`{changed}"


def markdown(meta: dict[str, Any], splits: dict[str, Any], rows: Sequence[ResultRow]) -> str:
    """The whole report for one dataset."""
    out = [
        f"## {meta['dataset']}",
        "",
        f"{meta['summary']}. Seed {meta['seed']}, encoder `{meta['encoder']}`, "
        f"{meta['date']}, {meta['machine']['cpu_count']} cores "
        f"({meta['machine']['processor']}), load average at the end "
        f"{', '.join(map(str, meta['machine'].get('load_average_at_end', [])))}; "
        f"{_source_words(meta.get('source'))}.",
        "",
    ]
    out += [f"Command: `{c}`" for c in meta.get("commands", [meta["command"]])]
    for protocol in dict.fromkeys(r.protocol for r in rows):
        chosen = [r for r in rows if r.protocol == protocol]
        info = splits.get(protocol, {})
        out += ["", f"### {protocol}", "", _split_line(protocol, info, chosen), ""]
        if protocol == "cold-user":
            out += ["NDCG@20 by number of revealed interactions k:", "", curve_table(chosen), ""]
            for k in sorted({r.k for r in chosen if r.k is not None}):
                out += [f"k = {k}:", "", *_with_blend([r for r in chosen if r.k == k])]
        else:
            out += _with_blend(chosen)
    return "\n".join(out).rstrip() + "\n"


def _split_line(protocol: str, info: dict[str, Any], rows: Sequence[ResultRow]) -> str:
    users = rows[0].users if rows else 0
    if protocol == "cold-item":
        return (
            f"{info.get('cold_items')} cold items ({info.get('cold_test_items')} in test), "
            f"{users} test users; ranking over the cold test items only."
        )
    if protocol == "cold-user":
        return (
            f"{info.get('cold_users')} cold users; each reveals its k earliest positives; "
            f"ranking over all items minus the revealed ones."
        )
    if protocol == "next-item":
        return (
            f"{users} test users (of those with at least {info.get('min_interactions')} "
            f"positives; {info.get('train_only_users')} with fewer train only), each user's "
            "latest positive held out (by timestamp), the one before it for validation, the "
            "whole earlier history revealed; ranking over all items minus that history."
        )
    if protocol == "warm-latest":
        return (
            f"{users} test users, each user's latest 20% of positives held out (by timestamp); "
            "ranking over all items minus training items."
        )
    return f"{users} test users, per-user 80/20; ranking over all items minus training items."


# ---- plots ---------------------------------------------------------------------------------
def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is in the bench extra
        raise ImportError("plots need matplotlib: pip install 'coldbrew[bench]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_cold_to_warm(rows: Sequence[ResultRow], path: Path, title: str) -> bool:
    """NDCG@20 over k for each model (cold-user rows); False when there are none."""
    chosen = [r for r in rows if r.protocol == "cold-user" and r.k is not None]
    if not chosen:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model in dict.fromkeys(r.model for r in chosen):
        points = sorted((r.k, r.metrics.get("ndcg@20", 0.0)) for r in chosen if r.model == model)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=model)
    ax.set_xlabel("revealed interactions k")
    ax.set_ylabel("NDCG@20")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_bars(rows: Sequence[ResultRow], path: Path, title: str, cold_user_k: int = 1) -> bool:
    """NDCG@20 per model with its 95% interval, one panel per protocol."""
    groups = []
    for protocol in dict.fromkeys(r.protocol for r in rows):
        chosen = [r for r in rows if r.protocol == protocol]
        if protocol == "cold-user":
            ks = sorted({r.k for r in chosen if r.k is not None})
            k = cold_user_k if cold_user_k in ks else ks[0]
            chosen = [r for r in chosen if r.k == k]
            protocol = f"cold-user (k={k})"
        groups.append((protocol, chosen))
    if not groups:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 4), squeeze=False)
    for ax, (label, chosen) in zip(axes[0], groups):
        names = [r.model for r in chosen]
        values = [r.metrics.get("ndcg@20", 0.0) for r in chosen]
        low = [max(v - _nan0(r.ndcg20_ci95[0], v), 0.0) for v, r in zip(values, chosen)]
        high = [max(_nan0(r.ndcg20_ci95[1], v) - v, 0.0) for v, r in zip(values, chosen)]
        ax.bar(names, values, yerr=[low, high], capsize=3, color="#4477aa")
        ax.set_title(label)
        ax.set_ylabel("NDCG@20")
        ax.tick_params(axis="x", rotation=60, labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _nan0(value: float, default: float) -> float:
    return default if math.isnan(value) else value
