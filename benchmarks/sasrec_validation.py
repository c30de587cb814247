"""SASRec's hyperparameters chosen on its inner validation only: for the bench's seed-42 next-item
split of one dataset, each setting is fit on the split's training part and reports the inner
validation Recall@10 of every epoch (each user's latest training like held out, the rest of the
history masked; ``SASRecRecommender``), its best epoch and its fit seconds. No validation or test
target of the split is read.

    PYTHONPATH=src python benchmarks/sasrec_validation.py --dataset ml-100k \
        --settings "blocks=2" "blocks=1" --out sasrec-val-ml-100k.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from coldbrew.bench.provenance import stamped
from coldbrew.bench.runner import BenchConfig, load_or_make_split
from coldbrew.data import load_dataset
from coldbrew.models.sasrec import SASRecRecommender

FLOATS = ("dropout", "learning_rate")


def parsed(setting: str) -> dict[str, Any]:
    """``"hidden=64,dropout=0.2"`` as constructor arguments (floats where the model wants them)."""
    pairs = [p.split("=", 1) for p in setting.split(",") if p.strip()]
    return {k.strip(): float(v) if k.strip() in FLOATS else int(v) for k, v in pairs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--settings", nargs="+", default=[""], help="comma-separated key=value each")
    ap.add_argument("--split-dir", default="/tmp/sasrec-validation-splits")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    dataset = load_dataset(args.dataset)
    config = BenchConfig(protocols=("next-item",))
    where = Path(args.split_dir) / args.dataset / "next-item-seed42"
    train = load_or_make_split(dataset, "next-item", config, where).train_dataset(dataset)
    runs = []
    for setting in args.settings:
        kwargs = {"seed": 42, **parsed(setting)}
        start, load = time.time(), os.getloadavg()[0]
        model = SASRecRecommender(**kwargs).fit(train)
        seconds = time.time() - start
        best = max(model.validation, default=float("nan"))
        run = {"setting": kwargs, "params": model.get_params(), "validation": model.validation}
        runs.append({**run, "best": best, "fit_seconds": seconds, "load_before": load})
        print(
            f"{setting or 'defaults'}: best {best:.4f} at epoch "
            f"{model.validation.index(best) + 1 if model.validation else 0}, "
            f"{seconds:.0f} s (load {load:.1f})",
            flush=True,
        )
    report = {"dataset": args.dataset, "protocol": "next-item", "runs": runs}
    Path(args.out).write_text(json.dumps(stamped(report), indent=1))


if __name__ == "__main__":
    main()
