"""Distillation of a cross-encoder teacher into the bi-encoder: quality kept and speed-up.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/distill.py --dataset ml-100k \
        --config '{"max_steps": 100, "eval_every": 25, "max_seq_length": 32,
                   "learning_rate": 1e-4, "distill_weight": 1.0,
                   "distill_teacher": "cross-encoder", "distill_loss": "margin-mse"}' \
        --test-users 300 --baseline --out /tmp/distill

One ``fine_tune`` run (cold-item split, seed 42) trains the cross-encoder teacher first (it is
saved in ``OUT/teacher``), then the bi-encoder student with the distillation term. Then, on the
same seeded sample of test users (the teacher reranks ``rerank_depth`` items per user with
``rerank_history`` passes each, too slow for every user on a CPU): zero-shot, the teacher
(reranking zero-shot's top items), the distilled student, and with ``--baseline`` the student
trained the same way without distillation. Each line has NDCG@20 and Recall@20 with 95%
bootstrap intervals and the ranking time per user; the student and zero-shot are also scored on
every test user. Training sees only the split's train part and stops early on its validation
part; test is read once per model, at the end.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from coldbrew.bench.evaluate import EvalResult, Ranker, evaluate
from coldbrew.bench.provenance import stamped
from coldbrew.data import load_dataset
from coldbrew.eval.metrics import bootstrap_ci
from coldbrew.eval.protocols import Split, cold_item_split
from coldbrew.models import ZeroShotRecommender
from coldbrew.text.factory import make_encoder
from coldbrew.text.sbert import SentenceTransformerEncoder
from coldbrew.text.templates import ItemTemplate
from coldbrew.train.config import TrainConfig
from coldbrew.train.cross import CrossEncoder, CrossEncoderReranker
from coldbrew.train.pairs import item_texts
from coldbrew.train.run import fine_tune


def measure(
    label: str, model: Ranker, split: Split, users: list[str] | None
) -> tuple[EvalResult, float]:
    start = time.perf_counter()
    result = evaluate(model, split, users=users)
    per_user = (time.perf_counter() - start) / max(1, len(result.users))
    figures = []
    for name in ("ndcg@20", "recall@20"):
        low, high = bootstrap_ci(result.per_user[name])
        figures.append(f"{name} {result.metrics[name]:.4f} [{low:.3f}, {high:.3f}]")
    print(
        f"TEST {label}: {'  '.join(figures)}  ({len(result.users)} users, "
        f"{1000 * per_user:.2f} ms/user)",
        flush=True,
    )
    return result, per_user


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--config", default="{}", help="TrainConfig fields as JSON")
    parser.add_argument("--test-users", type=int, default=300, help="sampled test users")
    parser.add_argument("--baseline", action="store_true", help="also train without distilling")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset)
    split = cold_item_split(dataset, seed=42)
    train = split.train_dataset(dataset)
    config = TrainConfig.from_dict(json.loads(args.config))
    if config.distillation.distill_weight <= 0 or config.distillation.distill_teacher == "cf":
        parser.error("the config must distil from a cross-encoder (distill_weight > 0)")

    encoder = make_encoder(config.encoder)
    if isinstance(encoder, SentenceTransformerEncoder):
        encoder.max_seq_length = config.max_seq_length  # as fine_tune sets it
    zero_shot = ZeroShotRecommender(encoder).fit(train)
    users = sorted(set(split.test["user_id"].astype(str)))
    rng = np.random.default_rng(42)
    sample = sorted(rng.choice(users, size=min(args.test_users, len(users)), replace=False))

    start = time.perf_counter()
    student, result = fine_tune(dataset, split, config, args.out)
    seconds = time.perf_counter() - start
    report = json.loads((args.out / "train.json").read_text())
    print(
        json.dumps(
            stamped(
                {
                    "config": json.loads(args.config),
                    "train_seconds": round(seconds, 1),
                    "teacher": report["stages"].get("teacher"),
                    "student": result.to_dict(),
                }
            )
        )
    )

    teacher_dir = (
        args.out / "teacher" if config.distillation.distill_teacher == "cross-encoder" else None
    )
    scorer = CrossEncoder.load(teacher_dir or config.distillation.distill_teacher)
    texts = item_texts(train, ItemTemplate(dataset.spec.item_text, dataset.spec.item_attributes))
    teacher = CrossEncoderReranker(
        zero_shot,
        scorer,
        texts,
        depth=config.distillation.rerank_depth,
        history=config.distillation.rerank_history,
    )
    label = f"{args.dataset} cold-item"
    measure(f"{label} zero-shot, all users", zero_shot, split, None)
    measure(f"{label} distilled student, all users", student, split, None)
    measure(f"{label} zero-shot, sample", zero_shot, split, sample)
    teacher_result, teacher_ms = measure(
        f"{label} teacher (reranks zero-shot)", teacher, split, sample
    )
    student_result, student_ms = measure(
        f"{label} distilled student, sample", student, split, sample
    )
    kept = student_result.metrics["ndcg@20"] / teacher_result.metrics["ndcg@20"]
    print(
        f"quality kept (NDCG@20 student / teacher): {kept:.3f}; speed-up "
        f"{teacher_ms / student_ms:.0f}x ({1000 * teacher_ms:.1f} vs {1000 * student_ms:.2f} "
        "ms per user)"
    )

    if args.baseline:
        base_config = config.with_values(distill_weight=0.0)
        base, base_result = fine_tune(
            dataset, split, base_config, args.out.with_name(args.out.name + "-baseline")
        )
        print(json.dumps({"baseline": base_result.to_dict()}))
        measure(f"{label} student without distillation, all users", base, split, None)
        measure(f"{label} student without distillation, sample", base, split, sample)


if __name__ == "__main__":
    main()
