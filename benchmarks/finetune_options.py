"""One LoRA fine-tuning run on the cold-item split, with test NDCG/Recall@20 and 95% intervals.

    .venv/bin/python benchmarks/finetune_options.py --dataset ml-100k \
        --config '{"max_steps": 100, "eval_every": 25, "max_seq_length": 32,
                   "learning_rate": 1e-4, "fgm_epsilon": 1.0}'

Used for the with/without table of the training options in benchmarks/README.md. Training sees
only the split's train part and stops early on its validation part; test is read once, at the end.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from coldbrew.data import load_dataset
from coldbrew.eval.evaluate import evaluate
from coldbrew.eval.metrics import bootstrap_ci
from coldbrew.eval.protocols import cold_item_split
from coldbrew.train.config import TrainConfig
from coldbrew.train.run import fine_tune


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--config", default="{}", help="TrainConfig fields as JSON")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="model directory to write (default: none)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset)
    split = cold_item_split(dataset, seed=42)
    config = TrainConfig(**json.loads(args.config))
    start = time.perf_counter()
    model, result = fine_tune(dataset, split, config, args.out)
    seconds = time.perf_counter() - start
    test = evaluate(model, split)
    figures = []
    for name in ("ndcg@20", "recall@20"):
        low, high = bootstrap_ci(test.per_user[name])
        figures.append(f"{name} {test.metrics[name]:.4f} [{low:.3f}, {high:.3f}]")
    print(
        json.dumps(
            {
                "config": json.loads(args.config),
                "train_seconds": round(seconds, 1),
                "result": result.to_dict(),
            }
        )
    )
    print(f"TEST {args.dataset}: " + "  ".join(figures))


if __name__ == "__main__":
    main()
