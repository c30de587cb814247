"""One fine-tuning run end to end: pairs -> trainer -> fitted model -> versioned directory.

The directory holds the model (``config.json``, ``arrays.npz``, ``encoder/`` safetensors, and
``user_encoder/`` with separate towers), the LoRA adapters when LoRA was used (``lora/``,
``lora-user/``, ``lora-dapt/``), the cross-encoder teacher when one was trained (``teacher/``),
and ``train.json``: the training config, the fingerprint of the training data, the validation
curves and the timings.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import shutil
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew import __version__
from coldbrew.bench.evaluate import Ranker, evaluate
from coldbrew.data.schema import ITEM_ID, USER_ID, Dataset
from coldbrew.eval.protocols import Split
from coldbrew.models.cf import ALSRecommender
from coldbrew.models.finetuned import FineTunedRecommender
from coldbrew.text.encoder import Encoder
from coldbrew.text.factory import MULTILINGUAL, make_encoder
from coldbrew.text.sbert import SentenceTransformerEncoder
from coldbrew.text.templates import ItemTemplate, UserTemplate
from coldbrew.train.config import TrainConfig
from coldbrew.train.contrastive import ContrastiveTrainer, Teacher, TrainResult
from coldbrew.train.cross import (
    CrossEncoder,
    CrossEncoderReranker,
    CrossEncoderTrainer,
    cross_teacher,
)
from coldbrew.train.pairs import (
    TrainingPair,
    build_pairs,
    catalogue_pairs,
    item_texts,
    mine_hard_negatives,
)
from coldbrew.train.progress import say

TRAIN_FORMAT_VERSION = 1


def fingerprint(dataset: Dataset) -> str:
    """SHA-256 over the training interactions and the item texts (order-independent)."""
    digest = hashlib.sha256()
    pairs = dataset.interactions[[USER_ID, ITEM_ID]].astype(str)
    for user, item in sorted(zip(pairs[USER_ID], pairs[ITEM_ID])):
        digest.update(f"{user}\t{item}\n".encode())
    for col in [ITEM_ID, *dataset.spec.item_text, *dataset.spec.item_attributes]:
        if col in dataset.items:
            digest.update(dataset.items[col].astype(str).str.cat(sep="\n").encode())
    return digest.hexdigest()


def validation_split(split: Split) -> Split:
    """The split with candidates set for its validation part (cold-item: the cold val items)."""
    candidates = split.info.get("cold_val_items", split.info.get("val_candidates"))
    return replace(split, candidates=list(candidates) if candidates is not None else None)


def validation_recall(
    model: Ranker,
    split: Split,
    k_values: Sequence[int],
    users: Sequence[str] | None = None,
    metric: str = "recall@20",
) -> float:
    """Recall@20 on ``split.val``; on cold-user the mean over ``k_values`` (users reveal ``k``).

    A ``k`` for which no validation user has more than ``k`` positives is left out of the mean.
    ``users`` keeps only those validation users; ``metric`` picks another @20 metric.
    """
    if split.protocol != "cold-user":
        return evaluate(model, split, part="val", ks=(20,), users=users).metrics[metric]
    recalls = []
    for k in k_values:
        result = evaluate(model, split, part="val", k_shot=k, ks=(20,), users=users)
        if result.users:
            recalls.append(result.metrics[metric])
    if not recalls:
        raise ValueError(f"no validation user has more than k positives for any k in {k_values}")
    return float(np.mean(recalls))


def starting_encoder(spec: str, device: str = "cpu") -> Encoder:
    """The encoder training starts from, on ``device``: the bundled multilingual model converted
    into a trainable PyTorch one (cached under ``$COLDBREW_CACHE``, else ``.coldbrew/cache``),
    or :func:`make_encoder`'s."""
    if spec in MULTILINGUAL:
        from coldbrew.text.e5torch import trainable_encoder

        cache = os.environ.get("COLDBREW_CACHE", ".coldbrew/cache")
        return trainable_encoder(cache, device=device)
    return make_encoder(spec, device=device)


def live_encoder(st_model: Any, base: SentenceTransformerEncoder) -> SentenceTransformerEncoder:
    """An encoder object around an in-memory ``SentenceTransformer`` (no reload)."""
    encoder = SentenceTransformerEncoder(
        base.model,
        device=base.device,
        query_prefix=base.query_prefix,
        passage_prefix=base.passage_prefix,
        max_seq_length=base.max_seq_length,
    )
    encoder._st = st_model
    return encoder


def cf_teacher(train: Dataset, seed: int, scale: float) -> Teacher:
    """Item-item cosines of ALS factors fitted on ``train``, times ``scale``: the collaborative
    teacher (its logits on the student's scale).

    Pairs with an unknown anchor (a profile, not an item) get a flat row (no signal).
    """

    als = ALSRecommender(factors=64, regularization=0.05, iterations=15, seed=seed).fit(train)
    factors = als.item_factors / np.maximum(
        np.linalg.norm(als.item_factors, axis=1, keepdims=True), 1e-12
    )

    def scores(batch: Sequence[TrainingPair], rng: np.random.Generator) -> np.ndarray:
        anchors, items = [p.anchor_id for p in batch], [p.item_id for p in batch]
        known = [a in als.item_ids for a in anchors]
        a_rows = als.item_ids.rows([a if k else items[0] for a, k in zip(anchors, known)])
        out = factors[a_rows] @ factors[als.item_ids.rows(items)].T
        out[~np.asarray(known)] = 0.0
        return np.asarray(scale * out, dtype=np.float32)

    return scores


def _templates(dataset: Dataset) -> tuple[ItemTemplate, UserTemplate]:
    spec = dataset.spec
    return (
        ItemTemplate(spec.item_text, spec.item_attributes),
        UserTemplate(
            text_fields=spec.user_text or ("text",), attribute_fields=spec.user_attributes
        ),
    )


def fine_tune(
    dataset: Dataset,
    split: Split,
    config: TrainConfig,
    out_dir: str | Path | None = None,
    *,
    encoder: SentenceTransformerEncoder | None = None,
    device: str = "cpu",
    show_progress: bool = False,
) -> tuple[FineTunedRecommender, TrainResult]:
    """Fine-tune on ``split.train`` with early stopping on ``split.val``; return the fitted model.

    Cold-user splits need validation users (``cold_user_split(..., val_fraction > 0)``); their
    score is the mean Recall@20 over ``val_k_values``, and the training pairs also hold
    attribute-only user sides (``attribute_pairs``). With ``out_dir`` the run checkpoints
    into ``out_dir/checkpoint`` (so calling again after a crash resumes) and finally writes the
    versioned model directory there. ``device`` is where the starting encoder (unless
    ``encoder`` is given) and every training step run (:mod:`coldbrew.text.device`); the
    saved model records none, so it loads anywhere.
    """
    cold_user = split.protocol == "cold-user"
    if cold_user and split.val.empty:
        raise ValueError(
            "fine-tuning on a cold-user split validates on held-out users, and this split has "
            "none; make it with cold_user_split(..., val_fraction=0.1)"
        )
    train = split.train_dataset(dataset)
    item_template, user_template = _templates(dataset)
    say(f"building training pairs from {len(train.positives()):,} interactions", show_progress)
    pairs = build_pairs(
        train,
        item_template=item_template,
        user_template=user_template,
        history=config.data.history,
        max_pairs=config.data.max_pairs,
        seed=config.seed,
        attribute_pairs=config.data.attribute_pairs and cold_user,
    )
    say(f"{len(pairs):,} pairs; loading the encoder ({config.encoder})", show_progress)
    base = encoder or starting_encoder(config.encoder, device)
    if not isinstance(base, SentenceTransformerEncoder):
        raise ValueError(f"fine-tuning needs a sentence-transformers encoder, got {base.name}")
    base.max_seq_length = config.max_seq_length
    st_model = base.st_model
    out = Path(out_dir) if out_dir is not None else None
    stages: dict[str, Any] = {}
    if config.dapt.dapt_steps:
        st_model, dapt = adapt_to_domain(st_model, train, item_template, config, out, show_progress)
        stages["dapt"] = dapt.to_dict()
    if config.data.hard_negatives:
        say(f"mining {config.data.hard_negatives} hard negatives per pair", show_progress)
        pairs = mine_hard_negatives(
            pairs,
            train,
            item_template,
            lambda texts: st_model.encode(texts, batch_size=64, normalize_embeddings=True),
            count=config.data.hard_negatives,
            skip=config.data.hard_negative_skip,
            depth=config.data.hard_negative_depth,
            seed=config.seed,
        )
    val = validation_split(split)
    # separate towers: the user tower starts as a copy of the (domain-adapted) encoder
    user_model = copy.deepcopy(st_model) if config.towers == "separate" else None

    def recommender(item_model: Any, user_side: Any, bar: bool = False) -> FineTunedRecommender:
        return FineTunedRecommender(
            live_encoder(item_model, base),
            user_encoder=None if user_side is None else live_encoder(user_side, base),
            item_template=item_template,
            user_template=user_template,
            show_progress=bar,
        ).fit(train)

    def validate(model: Any) -> float:
        ranker = recommender(model, user_model, show_progress)
        return validation_recall(ranker, val, config.validation.val_k_values)

    teacher: Teacher | None = None
    if config.distillation.distill_weight > 0 and config.distillation.distill_teacher == "cf":
        teacher = cf_teacher(train, config.seed, config.loss.scale)
    elif config.distillation.distill_weight > 0:
        if config.distillation.distill_teacher == "cross-encoder":
            first_stage = recommender(st_model, None)
            scorer, taught = train_teacher(
                first_stage, train, val, pairs, config, out, show_progress=show_progress
            )
            stages["teacher"] = taught.to_dict()
        else:
            scorer = CrossEncoder.load(
                config.distillation.distill_teacher, device=str(st_model.device)
            )
        teacher = cross_teacher(scorer, config.distillation.teacher_negatives)
    trainer = ContrastiveTrainer(
        config,
        st_model,
        pairs,
        validate=validate,
        checkpoint_dir=out,
        show_progress=show_progress,
        teacher=teacher,
        user_model=user_model,
    )
    result = trainer.train()
    say(f"encoding the catalogue with the weights of step {result.best_step}", show_progress)
    if out is not None and trainer.peft_model is not None:
        trainer.peft_model.save_pretrained(str(out / "lora"))
    if out is not None and trainer.user_peft_model is not None:
        trainer.user_peft_model.save_pretrained(str(out / "lora-user"))
    model = recommender(trainer.merged_model(), trainer.merged_user_model())
    if out is not None:
        model.save(out)
        device_used = str(st_model.device)
        write_report(out, config, train, split, result, len(pairs), stages, device_used)
        for scratch in ("checkpoint", "dapt", "teacher-run"):
            shutil.rmtree(out / scratch, ignore_errors=True)
    return model, result


def train_teacher(
    first_stage: FineTunedRecommender,
    train: Dataset,
    val: Split,
    pairs: Sequence[TrainingPair],
    config: TrainConfig,
    out: Path | None = None,
    *,
    show_progress: bool = False,
) -> tuple[CrossEncoder, TrainResult]:
    """Train the cross-encoder teacher on ``pairs``, from ``first_stage``'s encoder weights.

    Early stopping on validation NDCG@20 of the teacher reranking ``first_stage``'s top
    ``rerank_depth`` for a seeded sample of ``teacher_val_users`` validation users.
    Checkpoints in ``out/teacher-run`` (a crash resumes) and saves the teacher in
    ``out/teacher``, which a later run can name as its ``distill_teacher``.
    """
    import torch

    encoder = first_stage.encoder
    if not isinstance(encoder, SentenceTransformerEncoder):
        raise TypeError(
            "the cross-encoder teacher starts from a sentence-transformers model; "
            f"the first stage has a {type(encoder).__name__}"
        )
    torch.manual_seed(config.seed)  # the fresh head's weights
    limit = encoder.st_model[0].auto_model.config.max_position_embeddings
    scorer = CrossEncoder.from_sentence_transformer(
        encoder.st_model, max_length=min(2 * config.max_seq_length, limit)
    )
    val_users = sorted(set(val.val[USER_ID].astype(str)))
    if len(val_users) > config.distillation.teacher_val_users:
        rng = np.random.default_rng(config.seed)
        val_users = sorted(
            rng.choice(val_users, size=config.distillation.teacher_val_users, replace=False)
        )
    texts = item_texts(train, first_stage.item_template or _templates(train)[0])
    reranker = CrossEncoderReranker(
        first_stage,
        scorer,
        texts,
        depth=config.distillation.rerank_depth,
        history=config.distillation.rerank_history,
    )

    def validate(model: Any) -> float:
        return validation_recall(
            reranker, val, config.validation.val_k_values, val_users, "ndcg@20"
        )

    stage = config.with_values(
        method="full",
        max_steps=config.distillation.teacher_steps,
        batch_size=config.distillation.teacher_batch_size,
        learning_rate=config.distillation.teacher_learning_rate,
        eval_every=config.distillation.teacher_eval_every,
        augment=False,
        fgm_epsilon=0.0,
        distill_weight=0.0,
        dapt_steps=0,
    )
    trainer = CrossEncoderTrainer(
        stage,
        scorer,
        pairs,
        validate=validate,
        checkpoint_dir=out / "teacher-run" if out is not None else None,
        show_progress=show_progress,
    )
    result = trainer.train()
    scorer.model.eval()
    if out is not None:
        scorer.save(out / "teacher")
    return scorer, result


def adapt_to_domain(
    st_model: Any,
    train: Dataset,
    item_template: ItemTemplate,
    config: TrainConfig,
    out: Path | None = None,
    show_progress: bool = False,
) -> tuple[Any, TrainResult]:
    """Continued pre-training on item text alone (``dapt_steps`` SimCSE steps).

    ``dapt_items`` picks the texts: those of items with interactions in ``train``, or the
    whole catalogue of ``train`` (new items included).

    Field dropout makes the two views differ beyond dropout noise; in-batch negatives are the
    other items' texts. Returns the model with the stage's LoRA adapters merged in (so the
    interaction stage starts from it) and the stage's curve; checkpointed in ``out/dapt``, so a
    crash resumes. Its adapter is kept in ``out/lora-dapt``: the interaction stage's ``out/lora``
    applies on top of the base model with ``lora-dapt`` merged, not on the base model alone.
    """
    stage = config.with_values(
        max_steps=config.dapt.dapt_steps,
        augment=True,
        logq_correction=False,
        distill_weight=0.0,
        fgm_epsilon=0.0,
        warmup_steps=min(config.optimisation.warmup_steps, config.dapt.dapt_steps),
    )
    trainer = ContrastiveTrainer(
        stage,
        st_model,
        catalogue_pairs(train, item_template, items=config.dapt.dapt_items),
        checkpoint_dir=out / "dapt" if out is not None else None,
        show_progress=show_progress,
    )
    trainer.progress_label = "domain adaptation"
    result = trainer.train()
    if out is not None and trainer.peft_model is not None:
        trainer.peft_model.save_pretrained(str(out / "lora-dapt"))
    return trainer.merged_model(), result


def write_report(
    out: Path,
    config: TrainConfig,
    train: Dataset,
    split: Split,
    result: TrainResult,
    n_pairs: int,
    stages: dict[str, Any] | None = None,
    device: str = "cpu",
) -> None:
    """``train.json``: config, data fingerprint, the run's curve and timings; ``stages`` holds
    the curves of the stages before it (``dapt``, ``teacher``); ``device`` where it ran (a
    record of the run, outside its config: the model loads on any device)."""
    report = {
        "format_version": TRAIN_FORMAT_VERSION,
        "coldbrew": __version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} python {platform.python_version()}",
        "device": device,
        "config": config.to_dict(),
        "data": {
            "dataset": train.name,
            "protocol": split.protocol,
            "split_seed": split.seed,
            "fingerprint": fingerprint(train),
            "train_interactions": len(train.interactions),
            "pairs": n_pairs,
        },
        "metrics": result.to_dict(),
        "stages": stages or {},
    }
    (out / "train.json").write_text(json.dumps(report, indent=2))
