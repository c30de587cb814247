"""LoRA steps per second on a cold-item split, and the validation Recall@20 after those steps.

    PYTHONPATH=SRC .venv/bin/python benchmarks/train_speed.py --dataset ml-100k --steps 15
    PYTHONPATH=SRC .venv/bin/python benchmarks/train_speed.py --steps 100 --device cuda

Builds the pairs and the starting encoder as ``coldbrew train`` does (default settings), then
times only the optimisation steps (no validation inside the loop; wall and CPU seconds: on a
shared machine CPU seconds per step vary less), and scores the trained
weights once on the validation part. Prints one JSON line. Run it against two source trees
(``PYTHONPATH``) in alternation to compare them side by side; it uses only functions both the
old and the new training code have (``--device`` needs a tree that has it).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from coldbrew.bench.provenance import stamped
from coldbrew.data import load_dataset
from coldbrew.eval.protocols import cold_item_split
from coldbrew.models.finetuned import FineTunedRecommender
from coldbrew.train.config import TrainConfig
from coldbrew.train.contrastive import ContrastiveTrainer
from coldbrew.train.pairs import build_pairs
from coldbrew.train.run import (
    _templates,
    live_encoder,
    starting_encoder,
    validation_recall,
    validation_split,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default: 1, as `coldbrew train`)"
    )
    parser.add_argument("--lora-dropout", type=float, help="LoRA dropout (default: TrainConfig's)")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: the CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = TrainConfig().with_values(max_steps=args.steps)
    if args.lora_dropout is not None:
        config = config.with_values(lora_dropout=args.lora_dropout)
    dataset = load_dataset(args.dataset)
    split = cold_item_split(dataset, seed=config.seed)
    train = split.train_dataset(dataset)
    item_template, user_template = _templates(dataset)
    pairs = build_pairs(train, item_template=item_template, user_template=user_template)
    if args.device:
        base = starting_encoder(config.encoder, args.device)
    else:  # as a tree without --device calls it
        base = starting_encoder(config.encoder)
    base.max_seq_length = config.max_seq_length
    trainer = ContrastiveTrainer(config, base.st_model, pairs)
    cpu = time.process_time()
    result = trainer.train()
    cpu = time.process_time() - cpu
    model = FineTunedRecommender(
        live_encoder(trainer.merged_model(), base),
        item_template=item_template,
        user_template=user_template,
    ).fit(train)
    recall = validation_recall(model, validation_split(split), config.validation.val_k_values)
    figures = {
        "source": os.environ.get("PYTHONPATH", ""),
        "steps": result.steps,
        "device": str(base.st_model.device),
        "threads": torch.get_num_threads(),
        "lora_dropout": config.lora.lora_dropout,
        "seconds": round(result.seconds, 1),
        "steps_per_s": round(result.steps / result.seconds, 4),
        "cpu_s_per_step": round(cpu / result.steps, 2),  # less swayed by the other jobs
        "val_recall@20": round(recall, 4),
        "load_average": round(os.getloadavg()[0], 2),
        "at": time.strftime("%H:%M:%S", time.gmtime()),
    }
    print(json.dumps(stamped(figures)))


if __name__ == "__main__":
    main()
