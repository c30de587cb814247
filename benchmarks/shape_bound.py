"""Can one weighting of the hybrid's parts hold both warm protocols at once? (issue 24)

Evidence for a shortfall, never a way to choose anything: it reads test labels. A returning user
who asks from their history alone looks the same to the hybrid whether the protocol held out
random likes (``warm``) or the latest ones (``warm-latest``), so the returning users' weights
must serve both. ``blend_bound.py --grid-out`` saves, for each protocol, every weighting's mean
on its test queries, all and per user bucket; this script asks, for a dataset's two reports:

- **one weighting**: which grid point has the best smaller ratio to the protocol's best single
  part (the two protocols' own best parts), and is it within the never-below rule's reach on
  both (the hybrid at least the part's mean less its interval's half-width, blend_parts.py);
- **one weighting per user bucket** (as the hybrid's weights are): the buckets' points that
  maximise a weighted sum of the two ratios, scanned over the weight, keeping the best smaller
  ratio (a lower bound of what per-bucket weights can do).

    PYTHONPATH=src:benchmarks python benchmarks/shape_bound.py --warm w.npz w.json \\
        --latest l.npz l.json --out shape-bound.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from blend_parts import floor

from coldbrew.bench.provenance import stamped


def load(npz: str, report: str) -> dict[str, Any]:
    """One protocol's grid means (``blend_bound.py --grid-out``) and its report's parts."""
    data = np.load(npz)
    parts = json.loads(Path(report).read_text())["parts"]
    best = max(parts, key=lambda p: parts[p]["ndcg20"])
    return {
        "grid": data["grid"],
        "names": [str(p) for p in data["parts"]],
        "means": data["means"],
        "bucket_sums": data["bucket_sums"],
        "queries": int(data["queries"]),
        "best_part": best,
        "best_mean": float(parts[best]["ndcg20"]),
        "floor": floor(parts[best]["ndcg20"], *parts[best]["ci"]),
    }


def weights_of(names: list[str], row: np.ndarray) -> dict[str, float]:
    return {n: round(float(w), 3) for n, w in zip(names, row) if w > 0}


def per_bucket(a: dict[str, Any], b: dict[str, Any], steps: int = 101) -> dict[str, Any]:
    """Per-bucket points maximising ``lam * ratio_a + (1 - lam) * ratio_b`` for each ``lam``
    on a scan; the scan's best smaller ratio, with its means and points."""
    best: dict[str, Any] = {"worst_ratio": -1.0}
    for lam in np.linspace(0.0, 1.0, steps):
        gain = lam * a["bucket_sums"] / (a["queries"] * a["best_mean"])
        gain += (1 - lam) * b["bucket_sums"] / (b["queries"] * b["best_mean"])
        picks = gain.argmax(axis=1)
        rows = np.arange(len(picks))
        mean_a = float(a["bucket_sums"][rows, picks].sum() / a["queries"])
        mean_b = float(b["bucket_sums"][rows, picks].sum() / b["queries"])
        worst = min(mean_a / a["best_mean"], mean_b / b["best_mean"])
        if worst > best["worst_ratio"]:
            best = {
                "worst_ratio": round(worst, 4),
                "lambda": round(float(lam), 3),
                "means": [round(mean_a, 4), round(mean_b, 4)],
                "holds": [mean_a >= a["floor"], mean_b >= b["floor"]],
                "weights": [weights_of(a["names"], a["grid"][p]) for p in picks],
            }
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warm", nargs=2, required=True, metavar=("NPZ", "REPORT"))
    ap.add_argument("--latest", nargs=2, required=True, metavar=("NPZ", "REPORT"))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    a, b = load(*args.warm), load(*args.latest)
    if a["names"] != b["names"] or not np.allclose(a["grid"], b["grid"]):
        raise SystemExit("the two reports searched different parts or grids")
    ratio_a, ratio_b = a["means"] / a["best_mean"], b["means"] / b["best_mean"]
    worst = np.minimum(ratio_a, ratio_b)
    top = int(np.argmax(worst))
    report = {
        "protocols": {
            name: {k: p[k] for k in ("best_part", "best_mean", "floor")}
            for name, p in (("warm", a), ("warm-latest", b))
        },
        "grid_points": len(a["grid"]),
        "one_weighting": {
            "worst_ratio": round(float(worst[top]), 4),
            "means": [round(float(a["means"][top]), 4), round(float(b["means"][top]), 4)],
            "holds": [bool(a["means"][top] >= a["floor"]), bool(b["means"][top] >= b["floor"])],
            "weights": weights_of(a["names"], a["grid"][top]),
            "holding_both": int(((a["means"] >= a["floor"]) & (b["means"] >= b["floor"])).sum()),
        },
        "per_bucket": per_bucket(a, b),
    }
    print(json.dumps(report, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(stamped(report), indent=1))


if __name__ == "__main__":
    main()
