"""TrainConfig in groups: each group checks its fields, runs saved flat still load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coldbrew.train import TrainConfig
from coldbrew.train.config import GROUPS
from coldbrew.train.options import Augmentation, DataOptions, Optimisation

# the "config" of a train.json written before the groups: every field at the top level
FLAT_RUN: dict[str, Any] = {
    "encoder": "default", "method": "full", "towers": "separate", "seed": 7,
    "max_steps": 120, "batch_size": 16, "learning_rate": 3e-4, "warmup_steps": 10,
    "scale": 25.0, "max_seq_length": 48, "max_pairs": 1000, "history": "both",
    "attribute_pairs": False, "hard_negatives": 2, "hard_negative_skip": 3,
    "hard_negative_depth": 40, "augment": True, "fgm_epsilon": 0.1, "logq_correction": False,
    "distill_weight": 0.5, "distill_teacher": "cross-encoder", "distill_loss": "margin-mse",
    "teacher_steps": 30, "teacher_batch_size": 8, "teacher_learning_rate": 2e-5,
    "teacher_negatives": 4, "teacher_eval_every": 10, "rerank_depth": 10, "rerank_history": 3,
    "teacher_val_users": 50, "dapt_steps": 5, "dapt_items": "catalogue", "lora_rank": 4,
    "lora_alpha": 8, "lora_dropout": 0.1, "eval_every": 20, "patience": 3,
    "checkpoint_every": 10, "val_k_values": [0, 2],
}  # fmt: skip


def test_a_run_saved_flat_loads_into_the_groups_and_saves_grouped() -> None:
    config = TrainConfig.from_dict(json.loads(json.dumps(FLAT_RUN)))
    assert (config.method, config.towers, config.seed) == ("full", "separate", 7)
    assert config.optimisation == Optimisation(120, 16, 3e-4, 10, 10)
    assert config.data == DataOptions(1000, "both", False, 2, 3, 40)
    assert config.augmentation == Augmentation(True, 0.1)
    assert config.distillation.distill_teacher == "cross-encoder"
    assert config.lora.lora_dropout == 0.1 and config.validation.val_k_values == (0, 2)
    saved = config.to_dict()
    assert set(saved) == {"encoder", "method", "towers", "seed", "max_seq_length", *GROUPS}
    assert saved["optimisation"]["max_steps"] == 120 and "max_steps" not in saved
    assert TrainConfig.from_dict(json.loads(json.dumps(saved))) == config
    # every flat field found its group with its value: flattening gives the old dict back
    flat = {k: v for k, v in saved.items() if k not in GROUPS}
    flat.update({k: v for group in GROUPS for k, v in saved[group].items()})
    assert flat == FLAT_RUN


def test_each_group_names_its_bad_field() -> None:
    for values, field in (
        ({"max_steps": 0}, "max_steps must be at least 1"),
        ({"batch_size": 1}, "batch_size must be at least 2"),
        ({"history": "all"}, "history must be"),
        ({"hard_negatives": 5, "hard_negative_depth": 8}, "hard_negative_depth"),
        ({"teacher_negatives": 0}, "teacher_negatives must be at least 1"),
        ({"eval_every": 0}, "eval_every must be at least 1"),
        ({"dapt_steps": -1}, "dapt_steps must be 0"),
        ({"towers": "three"}, "towers must be"),
        ({"optimisation": {"max_stepz": 3}}, r"unknown training options \['max_stepz'\]"),
        ({"lora": 8}, "lora must be a table"),
    ):
        with pytest.raises(ValueError, match=field):
            TrainConfig.from_dict(values)


def test_with_values_and_toml_take_flat_names_and_tables(tmp_path: Path) -> None:
    base = TrainConfig().with_values(max_steps=9, lora={"lora_rank": 2})
    changed = base.with_values(learning_rate=1e-3, method="full")
    assert changed.optimisation == Optimisation(max_steps=9, learning_rate=1e-3)
    assert (changed.lora.lora_rank, changed.method) == (2, "full")
    (tmp_path / "t.toml").write_text(
        "[train]\nseed = 3\nmax_steps = 7\n\n[train.distillation]\ndistill_weight = 0.5\n"
    )
    read = TrainConfig.from_toml(tmp_path / "t.toml")
    assert (read.seed, read.optimisation.max_steps) == (3, 7)
    assert read.distillation.distill_weight == 0.5
