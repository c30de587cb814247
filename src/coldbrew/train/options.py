"""The groups of a training run's options (:class:`~coldbrew.train.config.TrainConfig`).

Each group is a frozen dataclass that checks its own fields when it is made, with a
``ValueError`` naming the field. A field keeps the name it had when the options were one flat
block, so a flag (``--max-steps``), a TOML key (``max_steps = 7``) and a flat saved config all
name it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass


def _at_least(group: object, minimum: int, *names: str) -> None:
    for name in names:
        value = getattr(group, name)
        if value < minimum:
            raise ValueError(f"{name} must be at least {minimum}, got {value}")


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be {' or '.join(allowed)}, got {value!r}")


@dataclass(frozen=True)
class DataOptions:
    """Which training pairs are drawn, and their negatives.

    Parameters
    ----------
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
    hard_negatives
        Mined hard negatives per pair (0: in-batch negatives only): items the starting encoder
        ranks high for the pair's user side that the user never liked. They join every query's
        negatives.
    hard_negative_skip, hard_negative_depth
        The ranks the hard negatives are drawn from, ``hard_negative_skip`` to
        ``hard_negative_depth`` (the closest few are passed over: they are the likeliest
        unlabelled positives).
    """

    max_pairs: int = 0
    history: str = "item"
    attribute_pairs: bool = True
    hard_negatives: int = 0
    hard_negative_skip: int = 5
    hard_negative_depth: int = 50

    def __post_init__(self) -> None:
        _one_of("history", self.history, ("item", "profile", "both"))
        if self.hard_negatives < 0 or self.hard_negative_skip < 0:
            raise ValueError("hard_negatives and hard_negative_skip must be 0 or more")
        if self.hard_negatives and self.hard_negative_depth <= (
            self.hard_negative_skip + self.hard_negatives
        ):
            raise ValueError(
                f"hard_negative_depth ({self.hard_negative_depth}) must exceed "
                "hard_negative_skip + hard_negatives"
            )


@dataclass(frozen=True)
class Optimisation:
    """AdamW, linear warm-up then linear decay, and how often the run saves a checkpoint.

    Parameters
    ----------
    max_steps
        Optimisation steps.
    batch_size
        Pairs per step (the other pairs are the negatives).
    learning_rate
        The AdamW learning rate.
    warmup_steps
        Steps of linear warm-up before the linear decay.
    checkpoint_every
        Steps between checkpoints (a crashed run resumes from the last one).
    """

    max_steps: int = 400
    batch_size: int = 32
    learning_rate: float = 1e-4
    warmup_steps: int = 20
    checkpoint_every: int = 50

    def __post_init__(self) -> None:
        _at_least(self, 1, "max_steps", "checkpoint_every")
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2 (in-batch negatives)")


@dataclass(frozen=True)
class LossOptions:
    """The contrastive loss.

    Parameters
    ----------
    scale
        Inverse temperature of the in-batch softmax (MultipleNegativesRankingLoss uses 20).
    logq_correction
        Subtract each item's log sampling frequency from its in-batch logits.
    """

    scale: float = 20.0
    logq_correction: bool = True


@dataclass(frozen=True)
class Augmentation:
    """Perturbations of the training inputs.

    Parameters
    ----------
    augment
        Field dropout and shuffled attribute order on the user side.
    fgm_epsilon
        Size of the FGM adversarial step on token embeddings (0: off).
    """

    augment: bool = False
    fgm_epsilon: float = 0.0


@dataclass(frozen=True)
class DaptOptions:
    """Domain-adaptive continued pre-training before the interaction stage.

    Parameters
    ----------
    dapt_steps
        This many steps of unsupervised contrastive learning on the training catalogue's item
        texts (SimCSE: an item's text, with field dropout, must find its full text among the
        batch's, both under dropout). No interactions are used; 0: off.
    dapt_items
        Whose texts that stage reads: ``train`` (items with training interactions, the
        default) or ``catalogue`` (every item's text, the new items' too: adapting to text that
        has arrived but has no interactions yet; still no interaction of theirs is used).
    """

    dapt_steps: int = 0
    dapt_items: str = "train"

    def __post_init__(self) -> None:
        _one_of("dapt_items", self.dapt_items, ("train", "catalogue"))
        if self.dapt_steps < 0:
            raise ValueError(f"dapt_steps must be 0 (off) or more, got {self.dapt_steps}")


@dataclass(frozen=True)
class Distillation:
    """A teacher whose in-batch scores the student learns to follow.

    Parameters
    ----------
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
    teacher_steps
        Training steps of the cross-encoder teacher (full fine-tuning, a fresh scoring head).
    teacher_batch_size, teacher_learning_rate, teacher_eval_every
        The teacher's batch size, learning rate and validation interval (it stops with the
        student's ``patience``).
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
    """

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

    def __post_init__(self) -> None:
        _at_least(
            self,
            1,
            "teacher_steps",
            "teacher_negatives",
            "teacher_eval_every",
            "rerank_depth",
            "rerank_history",
            "teacher_val_users",
        )
        _one_of("distill_loss", self.distill_loss, ("kl", "margin-mse"))
        if not self.distill_teacher:
            raise ValueError("distill_teacher must be cf, cross-encoder or a saved teacher's path")
        if self.teacher_batch_size < 2:
            raise ValueError("teacher_batch_size must be at least 2 (in-batch negatives)")


@dataclass(frozen=True)
class LoraOptions:
    """The adapters of ``method = "lora"`` (via ``peft``), on attention and dense layers.

    Parameters
    ----------
    lora_rank
        Rank of each adapter.
    lora_alpha, lora_dropout
        Scaling numerator and dropout of each adapter.
    """

    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0


@dataclass(frozen=True)
class Validation:
    """Early stopping on the validation split.

    Parameters
    ----------
    eval_every
        Validate (Recall@20 on the validation split) every this many steps.
    patience
        Stop after this many validations with no gain (the best weights are kept).
    val_k_values
        Cold-user only: validation Recall@20 is the mean over these ``k`` (each validation user
        reveals their ``k`` earliest positives).
    """

    eval_every: int = 100
    patience: int = 2
    val_k_values: tuple[int, ...] = (0, 1, 3, 5)

    def __post_init__(self) -> None:
        # TOML and JSON give lists; keep a tuple so configs compare and hash alike
        object.__setattr__(self, "val_k_values", tuple(self.val_k_values))
        if not self.val_k_values or min(self.val_k_values) < 0:
            raise ValueError(
                f"val_k_values must be non-negative and not empty, got {self.val_k_values}"
            )
        _at_least(self, 1, "eval_every")
