"""What answers a new user best on a time-ordered stream: plain or attribute popularity?

Issue #12's replay leaves one cell short: on ml-1m, users with no history before the request
(29 of the 2,000 evaluated events) got 9 hits from the hybrid against popularity's 10. The
hybrid's answer to a new user with attributes is its attribute-popularity part (``smoothing``
was 0.1 then, the baseline's, chosen on the bench's random cold-user validation, which judges
all of a held-out user's likes; the part now uses 1, chosen here). Twenty-nine events
cannot tell a systematic gap from chance, so this script scores every new user of the stream,
offline, with the counts the service would have had just before their first positive:

* **first like** — the positive the replay asks about (hit@20, NDCG@20 of that one item);
* **later likes** — all of their positives in the stream (NDCG@20), what the bench's k = 0
  cold-user protocol judges.

Plain popularity (ties by catalogue order, as the replay's baseline) and attribute popularity at
several ``smoothing`` values (0.1 the baseline's, 1 the hybrid's) are compared on the same users,
per part of the stream: before the replay's evaluation (its history half: the only part to
choose on), its evaluation window (the first ``--eval-events`` after it) and the rest (read,
not chosen on). "both" is the mean of the first like's and all likes' NDCG@20, the rule the
hybrid's smoothing was chosen by.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/new_user_answers.py \\
        --dataset ml-1m --out /tmp/new-users
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from replay_report import K, bootstrap, hits_of_rank
from replay_stream import positives_in_order, user_attributes

from coldbrew.bench.provenance import stamped
from coldbrew.data.benchmarks import LOADERS, data_root
from coldbrew.data.schema import Dataset
from coldbrew.eval.metrics import ndcg_of_hits, ndcg_of_rank
from coldbrew.models.baselines import AttributePopularityRecommender, smoothed_lift

SMOOTHING = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
BASELINE_SMOOTHING, HYBRID_SMOOTHING = 0.1, 1.0
PARTS = ("history half", "evaluation window", "rest")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="ml-1m", choices=["ml-100k", "ml-1m"])
    parser.add_argument("--data-root", default=None, help="benchmark data (default: as the CLI)")
    parser.add_argument("--warmup", type=float, default=0.5, help="the replay's history share")
    parser.add_argument("--eval-events", type=int, default=2000, help="the replay's N")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON report")
    return parser.parse_args(argv)


def judge(scores: np.ndarray, first: int, relevant: set[int]) -> tuple[int, float]:
    """The 1-based rank of ``first`` in the top ``K`` of ``scores`` (ties by catalogue order;
    0 beyond it), and the NDCG@K of that top against every item in ``relevant``."""
    top = np.lexsort((np.arange(len(scores)), -scores))[:K]
    where = np.flatnonzero(top == first)
    found = np.isin(top, list(relevant))[None, :]
    ndcg = ndcg_of_hits(found, np.asarray([len(relevant)]), K)[0]
    return (int(where[0]) + 1 if len(where) else 0), float(ndcg)


def score_new_users(
    frame: pd.DataFrame,
    attributes: dict[str, dict[str, Any]],
    items: list[str],
    smoothing: tuple[float, ...] = SMOOTHING,
) -> pd.DataFrame:
    """One row per user at their first positive in ``frame`` (time-ordered): its position in
    the stream, and per answer the first like's rank and the NDCG@K of all their positives,
    every answer scored with the counts of the positives before it."""
    row = {item: n for n, item in enumerate(items)}
    users = frame["user_id"].astype(str).to_numpy()
    liked = np.asarray([row[str(i)] for i in frame["item_id"]])
    later: dict[str, set[int]] = {}
    for user, item in zip(users, liked, strict=True):
        later.setdefault(user, set()).add(int(item))
    key = AttributePopularityRecommender.attribute_key
    keys: dict[str, int] = {}
    user_keys = {
        u: [keys.setdefault(key(f, v), len(keys)) for f, v in a.items()]
        for u, a in attributes.items()
    }
    counts = np.zeros(len(items))
    by_value = np.zeros((len(keys), len(items)))
    records = []
    for n, (user, item) in enumerate(zip(users, liked, strict=True)):
        mine = user_keys.get(user, [])
        if user in later and n > 0:  # their first positive, after some counts
            answers = {"popularity": counts}
            for s in smoothing:
                lifted = counts.copy()
                for k in mine:
                    lifted *= smoothed_lift(by_value[k], counts, s)
                answers[f"attribute s={s:g}"] = lifted
            record: dict[str, Any] = {"position": n, "user": user}
            for name, scores in answers.items():
                record[f"{name}|rank"], record[f"{name}|later"] = judge(
                    scores, int(item), later[user]
                )
            records.append(record)
        later.pop(user, None)
        counts[item] += 1
        by_value[mine, item] += 1
    return pd.DataFrame.from_records(records)


def part_of(positions: np.ndarray, n_warm: int, n_eval: int) -> np.ndarray:
    return np.where(
        positions < n_warm, PARTS[0], np.where(positions < n_warm + n_eval, PARTS[1], PARTS[2])
    )


def summarise(scored: pd.DataFrame, resamples: int) -> dict[str, Any]:
    """Per answer: hit@K and NDCG@K of the first like, NDCG@K of all likes (95% intervals),
    and the first like's hits paired against plain popularity's."""
    names = [c.split("|")[0] for c in scored.columns if c.endswith("|rank")]
    base = hits_of_rank(scored["popularity|rank"].to_numpy())
    out: dict[str, Any] = {"users": len(scored)}
    for name in names:
        ranks = scored[f"{name}|rank"].to_numpy()
        hits, ndcg = hits_of_rank(ranks), ndcg_of_rank(ranks, K)
        later = scored[f"{name}|later"].to_numpy(dtype=float)
        out[name] = {
            "first_hits": int(hits.sum()),
            "first_hit": round(float(hits.mean()), 4),
            "first_hit_ci": bootstrap(hits, resamples),
            "first_ndcg": round(float(ndcg.mean()), 4),
            "later_ndcg": round(float(later.mean()), 4),
            "later_ndcg_ci": bootstrap(later, resamples),
            "both": round(float((ndcg.mean() + later.mean()) / 2), 4),
            "first_hits_minus_popularity": bootstrap(hits - base, resamples),
        }
    return out


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"new users of the {report['dataset']} stream ({report['events']:,} positives; "
        f"the replay's history half ends at {report['n_warm']:,})",
        "",
        "| part | users | answer | first like: hits (hit@20) | NDCG@20 | "
        "hit − popularity, 95% CI | all likes: NDCG@20 [95% CI] | both |",
        "|---|---:|---|---:|---:|---|---|---:|",
    ]
    for part, figures in report["parts"].items():
        for name, f in figures.items():
            if name == "users":
                continue
            low, high = f["first_hits_minus_popularity"]
            later_low, later_high = f["later_ndcg_ci"]
            lines.append(
                f"| {part} | {figures['users']:,} | {name} | {f['first_hits']} "
                f"({f['first_hit']:.3f}) | {f['first_ndcg']:.3f} | [{low:+.3f}, {high:+.3f}] | "
                f"{f['later_ndcg']:.3f} [{later_low:.3f}, {later_high:.3f}] | {f['both']:.4f} |"
            )
    return "\n".join(lines) + "\n"


def run(data: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    items = [str(i) for i in data.items["item_id"]]
    return run_on(positives_in_order(data), user_attributes(data), items, data.name, args)


def run_on(
    frame: pd.DataFrame,
    attributes: dict[str, dict[str, Any]],
    items: list[str],
    name: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The report for a time-ordered stream of positives, cut as the replay cuts it."""
    scored = score_new_users(frame, attributes, items)
    n_warm = int(len(frame) * args.warmup)
    n_eval = min(args.eval_events, len(frame) - n_warm)
    where = part_of(scored["position"].to_numpy(), n_warm, n_eval)
    return {
        "dataset": name,
        "events": len(frame),
        "n_warm": n_warm,
        "n_eval": n_eval,
        "smoothing": {"baseline": BASELINE_SMOOTHING, "hybrid part": HYBRID_SMOOTHING},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "parts": {
            part: summarise(scored[where == part], args.resamples)
            for part in PARTS
            if (where == part).any()
        },
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    data = LOADERS[args.dataset](data_root(args.data_root))
    report = run(data, args)
    text = markdown(report)
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = args.out / f"new-user-answers-{args.dataset}"
        stem.with_suffix(".json").write_text(json.dumps(stamped(report), indent=1) + "\n")
        stem.with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()
