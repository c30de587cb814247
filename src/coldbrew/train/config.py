"""Hyperparameters of a training run, read from flags or a TOML file."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a fine-tuning run (with the data and the seed: its result).

    Parameters
    ----------
    encoder
        The starting model (``default`` is the bundled MiniLM; or a path).
    method
        ``lora`` (adapters on attention, via ``peft``) or ``full`` (every weight).
    towers
        ``shared`` (one encoder reads the user side and the items) or ``separate`` (a copy of
        the starting encoder becomes the user tower and trains with its own weights; the model
        directory then holds ``user_encoder/`` too).
    max_steps, batch_size, learning_rate, warmup_steps
        Optimisation (AdamW, linear warm-up then linear decay).
    scale
        Inverse temperature of the in-batch softmax (MultipleNegativesRankingLoss uses 20).
    max_pairs
        Training pairs drawn from the interactions (few-shot: 100, 1k, 10k; 0: all).
    history
        The user side of a pair: ``item`` (another liked item's text) or ``profile``
        (attributes and free text) or ``both`` (a mix).
    attribute_pairs
        On cold-user splits, also pair each training user's attributes alone (rendered as a
        query is at recommendation time) with every item they liked: at k=0 the attributes are
        all that is known about a cold user. Other protocols ignore it (their users always come
        with a history), so their runs are unchanged.
    hard_negatives, hard_negative_skip, hard_negative_depth
        Mined hard negatives per pair (0: in-batch negatives only): items the starting encoder
        ranks high for the pair's user side that the user never liked, drawn from ranks
        ``hard_negative_skip`` to ``hard_negative_depth`` (the closest few are passed over: they
        are the likeliest unlabelled positives). They join every query's negatives.
    augment
        Field dropout and shuffled attribute order on the user side.
    fgm_epsilon
        Size of the FGM adversarial step on token embeddings (0: off).
    logq_correction
        Subtract each item's log sampling frequency from its in-batch logits.
    distill_weight
        Weight of the term that makes the in-batch scores follow a teacher's (0: off).
    distill_teacher
        The teacher: ``cf`` (the collaborative model's item-item cosines, ALS fitted on the
        training interactions), ``cross-encoder`` (a cross-encoder trained first, from the
        starting encoder's weights, on the same pairs: slower and stronger, it reads query and
        item together), or the path of a cross-encoder saved by an earlier run (its
        ``teacher/`` directory).
    distill_loss
        ``kl`` (KL between the in-batch softmax distributions) or ``margin-mse`` (squared error
        between the positive-minus-negative score margins, as in Hofstätter et al. 2020).
    teacher_steps, teacher_batch_size, teacher_learning_rate, teacher_eval_every
        Training of the cross-encoder teacher (full fine-tuning, a fresh scoring head;
        validated every ``teacher_eval_every`` steps, with ``patience`` as the student).
    teacher_negatives
        In-batch negatives per query the cross-encoder scores, in its own training and when it
        teaches (it reads every pair, so a full batch x batch matrix would cost batch² passes).
    rerank_depth, rerank_history
        How the cross-encoder ranks for a user (validation, ``benchmarks/distill.py``): it
        re-orders the bi-encoder's top ``rerank_depth`` items, scoring each against the user's
        ``rerank_history`` latest liked items (and their profile text) and averaging.
    teacher_val_users
        Validation users the teacher is checked on (a seeded sample: reranking costs
        ``rerank_depth`` x ``rerank_history`` transformer passes per user).
    dapt_steps
        Domain-adaptive continued pre-training before the interaction stage: this many steps
        of unsupervised contrastive learning on the training catalogue's item texts (SimCSE:
        an item's text, with field dropout, must find its full text among the batch's, both
        under dropout). No interactions are used; 0: off.
    dapt_items
        Whose texts that stage reads: ``train`` (items with training interactions, the
        default) or ``catalogue`` (every item's text, the new items' too: adapting to text that
        has arrived but has no interactions yet; still no interaction of theirs is used).
    eval_every, patience
        Validation Recall@20 every ``eval_every`` steps; stop after ``patience`` checks with no
        gain and keep the best weights.
    val_k_values
        Cold-user only: validation Recall@20 is the mean over these ``k`` (each validation user
        reveals their ``k`` earliest positives).
    """

    encoder: str = "default"
    method: str = "lora"
    towers: str = "shared"
    seed: int = 42
    max_steps: int = 400
    batch_size: int = 32
    learning_rate: float = 1e-4
    warmup_steps: int = 20
    scale: float = 20.0
    max_seq_length: int = 64
    max_pairs: int = 0
    history: str = "item"
    attribute_pairs: bool = True
    hard_negatives: int = 0
    hard_negative_skip: int = 5
    hard_negative_depth: int = 50
    augment: bool = False
    fgm_epsilon: float = 0.0
    logq_correction: bool = True
    distill_weight: float = 0.0
    distill_teacher: str = "cf"
    distill_loss: str = "kl"
    teacher_steps: int = 200
    teacher_batch_size: int = 16
    teacher_learning_rate: float = 1e-4
    teacher_negatives: int = 3
    teacher_eval_every: int = 50
    rerank_depth: int = 20
    rerank_history: int = 2
    teacher_val_users: int = 100
    dapt_steps: int = 0
    dapt_items: str = "train"
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    eval_every: int = 100
    patience: int = 2
    checkpoint_every: int = 50
    val_k_values: tuple[int, ...] = (0, 1, 3, 5)

    def __post_init__(self) -> None:
        # TOML and JSON give lists; keep a tuple so configs compare and hash alike
        object.__setattr__(self, "val_k_values", tuple(self.val_k_values))
        if not self.val_k_values or min(self.val_k_values) < 0:
            raise ValueError(
                f"val_k_values must be non-negative and not empty, got {self.val_k_values}"
            )
        if self.method not in ("lora", "full"):
            raise ValueError(f"method must be 'lora' or 'full', got {self.method!r}")
        if self.towers not in ("shared", "separate"):
            raise ValueError(f"towers must be shared or separate, got {self.towers!r}")
        if self.history not in ("item", "profile", "both"):
            raise ValueError(f"history must be item, profile or both, got {self.history!r}")
        for name in (
            "max_steps",
            "batch_size",
            "eval_every",
            "checkpoint_every",
            "teacher_steps",
            "teacher_negatives",
            "teacher_eval_every",
            "rerank_depth",
            "rerank_history",
            "teacher_val_users",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.dapt_items not in ("train", "catalogue"):
            raise ValueError(f"dapt_items must be train or catalogue, got {self.dapt_items!r}")
        if self.hard_negatives < 0 or self.hard_negative_skip < 0:
            raise ValueError("hard_negatives and hard_negative_skip must be 0 or more")
        if self.hard_negatives and self.hard_negative_depth <= (
            self.hard_negative_skip + self.hard_negatives
        ):
            raise ValueError(
                f"hard_negative_depth ({self.hard_negative_depth}) must exceed "
                "hard_negative_skip + hard_negatives"
            )
        if self.dapt_steps < 0:
            raise ValueError(f"dapt_steps must be 0 (off) or more, got {self.dapt_steps}")
        if self.distill_loss not in ("kl", "margin-mse"):
            raise ValueError(f"distill_loss must be kl or margin-mse, got {self.distill_loss!r}")
        if not self.distill_teacher:
            raise ValueError("distill_teacher must be cf, cross-encoder or a saved teacher's path")
        if self.teacher_batch_size < 2:
            raise ValueError("teacher_batch_size must be at least 2 (in-batch negatives)")
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2 (in-batch negatives)")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (lists, not tuples), so a dict read back from JSON compares equal."""
        values = asdict(self)
        values["val_k_values"] = list(self.val_k_values)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training options {unknown}; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | Path) -> TrainConfig:
        data = tomllib.loads(Path(path).read_text())
        return cls.from_dict(data.get("train", data))
