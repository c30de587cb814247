"""One LoRA fine-tuning run with zero-shot and fine-tuned test NDCG/Recall@20 and 95% intervals.

    .venv/bin/python benchmarks/finetune_options.py --dataset ml-100k \
        --config '{"max_steps": 100, "eval_every": 25, "max_seq_length": 32,
                   "learning_rate": 1e-4, "fgm_epsilon": 1.0}'

``--protocol cold-user`` trains on the cold-user split (10% of users held out for validation,
as ``coldbrew train`` does) and reports test per ``k`` (``--k-values``). Used for the
with/without tables of the training options in benchmarks/README.md. Training sees only the
split's train part and stops early on its validation part; test is read once, at the end. The
zero-shot line is the same encoder, untrained, with the same ``max_seq_length``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from coldbrew.bench.evaluate import EvalResult, evaluate
from coldbrew.bench.provenance import stamped
from coldbrew.data import load_dataset
from coldbrew.eval.metrics import bootstrap_ci
from coldbrew.eval.protocols import Split, cold_item_split, cold_user_split
from coldbrew.models import Recommender, ZeroShotRecommender
from coldbrew.text.factory import make_encoder
from coldbrew.text.sbert import SentenceTransformerEncoder
from coldbrew.train.config import TrainConfig
from coldbrew.train.run import fine_tune


def figures(result: EvalResult) -> str:
    out = []
    for name in ("ndcg@20", "recall@20"):
        low, high = bootstrap_ci(result.per_user[name])
        out.append(f"{name} {result.metrics[name]:.4f} [{low:.3f}, {high:.3f}]")
    return "  ".join(out) + f"  ({len(result.users)} users)"


def report(label: str, model: Recommender, split: Split, k_values: list[int]) -> None:
    if split.protocol != "cold-user":
        print(f"TEST {label}: {figures(evaluate(model, split))}", flush=True)
        return
    for k in k_values:
        print(f"TEST {label} k={k}: {figures(evaluate(model, split, k_shot=k))}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--protocol", default="cold-item", choices=["cold-item", "cold-user"])
    parser.add_argument("--k-values", default="0,1,3,5", help="cold-user test k (comma-separated)")
    parser.add_argument("--config", default="{}", help="TrainConfig fields as JSON")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="model directory to write (default: none)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset)
    if args.protocol == "cold-user":
        split = cold_user_split(dataset, val_fraction=0.1, seed=42)
    else:
        split = cold_item_split(dataset, seed=42)
    k_values = [int(k) for k in args.k_values.split(",")]
    config = TrainConfig.from_dict(json.loads(args.config))
    label = f"{args.dataset} {args.protocol}"

    encoder = make_encoder(config.encoder)
    if isinstance(encoder, SentenceTransformerEncoder):
        encoder.max_seq_length = config.max_seq_length  # as fine_tune sets it
    zero_shot = ZeroShotRecommender(encoder).fit(split.train_dataset(dataset))
    report(f"{label} zero-shot", zero_shot, split, k_values)

    start = time.perf_counter()
    model, result = fine_tune(dataset, split, config, args.out)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            stamped(
                {
                    "protocol": args.protocol,
                    "config": json.loads(args.config),
                    "train_seconds": round(seconds, 1),
                    "result": result.to_dict(),
                }
            )
        )
    )
    report(f"{label} fine-tuned", model, split, k_values)


if __name__ == "__main__":
    main()
