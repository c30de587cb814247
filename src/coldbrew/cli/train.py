"""``coldbrew train``: fine-tune the encoder on a protocol's training split; write a model dir.

Options come from ``--config FILE.toml`` (a ``[train]`` table of :class:`TrainConfig` fields)
and are overridden by flags. Running the same command again after a crash resumes from the
checkpoint in ``--out``. The directory loads with ``coldbrew recommend/eval --model DIR``.
On cold-user, validation is the mean Recall@20 over ``val_k_values`` and the test metrics are
reported per ``k`` (the bench's k values), in ``train.json`` under ``test_by_k``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from coldbrew.bench.evaluate import evaluate
from coldbrew.cli.common import add_dataset_args, load_from_args, require_extra
from coldbrew.cli.device import add_device_arg
from coldbrew.cpus import usable_cpus
from coldbrew.data.schema import Dataset
from coldbrew.eval.protocols import (
    K_VALUES,
    Split,
    cold_item_split,
    cold_user_split,
    warm_split,
)
from coldbrew.models.base import Recommender
from coldbrew.train.config import TrainConfig
from coldbrew.train.optiondocs import option_help, option_type
from coldbrew.train.progress import say

FLAGS = (
    "encoder",
    "method",
    "towers",
    "seed",
    "max_steps",
    "batch_size",
    "learning_rate",
    "max_seq_length",
    "max_pairs",
    "history",
    "hard_negatives",
    "fgm_epsilon",
    "dapt_steps",
    "dapt_items",
    "distill_weight",
    "distill_teacher",
    "distill_loss",
    "teacher_steps",
    "eval_every",
    "patience",
    "lora_rank",
)
"""The :class:`TrainConfig` fields ``coldbrew train`` takes as valued flags (``--max-steps``),
each with the type and the text its declaration gives; ``--augment`` is a switch."""


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "train",
        help="fine-tune the language model on interactions (LoRA or full) and save the model",
        description="Contrastive fine-tuning with in-batch negatives on a protocol's training "
        "split, early stopping on its validation split (the test split is only scored at the "
        "end). Writes a model directory that eval/recommend load; rerun to resume a crash.",
    )
    add_dataset_args(parser)
    parser.add_argument("--config", type=Path, help="TOML file with a [train] table")
    parser.add_argument(
        "--protocol",
        default="cold-item",
        choices=["cold-item", "cold-user", "warm"],
        help="split to train and validate on (default: %(default)s)",
    )
    for name in FLAGS:
        flag = f"--{name.replace('_', '-')}"
        parser.add_argument(flag, type=option_type(name), help=option_help(name))
    parser.add_argument("--augment", action="store_true", default=None, help=option_help("augment"))
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default: 1; on an idle machine up to the CPUs this process may "
        f"use, {usable_cpus()} here, is faster, but on a shared one a busy core stalls them all)",
    )
    add_device_arg(parser, "the training and the encoding (the saved model records no device)")
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The ``--config`` file's options (defaults without one), with the flags given laid over."""
    base = TrainConfig.from_toml(args.config) if args.config else TrainConfig()
    names = [*FLAGS, "augment"]
    return base.with_values(**{n: getattr(args, n) for n in names if getattr(args, n) is not None})


def make_split(dataset: Dataset, protocol: str, seed: int) -> Split:
    if protocol == "cold-item":
        return cold_item_split(dataset, seed=seed)
    if protocol == "cold-user":
        return cold_user_split(dataset, k_values=K_VALUES, val_fraction=0.1, seed=seed)
    return warm_split(dataset, val_fraction=0.1, seed=seed)


def _line(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k.endswith("@20"))


def test_report(model: Recommender, split: Split) -> dict[str, Any]:
    """Test metrics, printed and returned for ``train.json``: ``test`` (cold-item, warm), or
    ``test_by_k`` (cold-user: one entry per bench ``k``, with its number of users)."""
    if split.protocol != "cold-user":
        test = evaluate(model, split).metrics
        print("test " + _line(test))
        return {"test": test}
    by_k: dict[str, dict[str, float]] = {}
    for k in split.info.get("k_values", K_VALUES):
        result = evaluate(model, split, k_shot=k)
        by_k[str(k)] = {**result.metrics, "users": len(result.users)}
        print(f"test k={k} ({len(result.users)} users) " + _line(result.metrics))
    return {"test_by_k": by_k}


def run(args: argparse.Namespace) -> int:
    talk = not args.no_progress
    say("coldbrew train: loading the training libraries", talk)
    require_extra("train", ("peft", "accelerate", "datasets"))
    import torch

    from coldbrew.text.device import resolve_device
    from coldbrew.train.run import fine_tune

    torch.set_num_threads(args.threads)
    config = config_from_args(args)
    device = resolve_device(args.device)
    say(f"training on {device} (--device {args.device})", talk)
    say(f"loading the data ({args.dataset or args.data})", talk)
    dataset = load_from_args(args)
    print(dataset.summary())
    say(f"splitting it for the {args.protocol} protocol", talk)
    split = make_split(dataset, args.protocol, config.seed)
    model, result = fine_tune(dataset, split, config, args.out, device=device, show_progress=talk)
    over_k = ""
    if split.protocol == "cold-user":
        over_k = ", mean over k=" + ",".join(str(k) for k in config.validation.val_k_values)
    print(
        f"trained {result.steps} steps in {result.seconds:.0f}s; best step {result.best_step} "
        f"(validation recall@20 {result.best_metric:.4f}{over_k})"
    )
    say("scoring the test split", talk)
    report_file = args.out / "train.json"
    report = json.loads(report_file.read_text())
    report.update(test_report(model, split))
    report_file.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0
