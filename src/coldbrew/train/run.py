"""One fine-tuning run end to end: pairs -> trainer -> fitted model -> versioned directory.

The directory holds the model (``config.json``, ``arrays.npz``, ``encoder/`` safetensors), the
LoRA adapter (``lora/``) when LoRA was used, and ``train.json``: the training config, the
fingerprint of the training data, the validation curve and the timings.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew import __version__
from coldbrew.data.schema import ITEM_ID, USER_ID, Dataset
from coldbrew.eval.evaluate import evaluate
from coldbrew.eval.protocols import Split
from coldbrew.models.base import Recommender
from coldbrew.models.finetuned import FineTunedRecommender
from coldbrew.text.factory import make_encoder
from coldbrew.text.sbert import SentenceTransformerEncoder
from coldbrew.text.templates import ItemTemplate, UserTemplate
from coldbrew.train.config import TrainConfig
from coldbrew.train.contrastive import ContrastiveTrainer, Teacher, TrainResult
from coldbrew.train.pairs import build_pairs, catalogue_pairs

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


def validation_recall(model: Recommender, split: Split, k_values: Sequence[int]) -> float:
    """Recall@20 on ``split.val``; on cold-user the mean over ``k_values`` (users reveal ``k``).

    A ``k`` for which no validation user has more than ``k`` positives is left out of the mean.
    """
    if split.protocol != "cold-user":
        return evaluate(model, split, part="val", ks=(20,)).metrics["recall@20"]
    recalls = []
    for k in k_values:
        result = evaluate(model, split, part="val", k_shot=k, ks=(20,))
        if result.users:
            recalls.append(result.metrics["recall@20"])
    if not recalls:
        raise ValueError(f"no validation user has more than k positives for any k in {k_values}")
    return float(np.mean(recalls))


def live_encoder(st_model: Any, base: SentenceTransformerEncoder) -> SentenceTransformerEncoder:
    """An encoder object around an in-memory ``SentenceTransformer`` (no reload)."""
    encoder = SentenceTransformerEncoder(
        base.model,
        query_prefix=base.query_prefix,
        passage_prefix=base.passage_prefix,
        max_seq_length=base.max_seq_length,
    )
    encoder._st = st_model
    return encoder


def cf_teacher(train: Dataset, seed: int) -> Teacher:
    """Item-item cosines of ALS factors fitted on ``train``: the collaborative teacher.

    Pairs with an unknown anchor (a profile, not an item) get a flat row (no signal).
    """
    from coldbrew.models.cf import ALSRecommender

    als = ALSRecommender(factors=64, regularization=0.05, iterations=15, seed=seed).fit(train)
    factors = als.item_factors / np.maximum(
        np.linalg.norm(als.item_factors, axis=1, keepdims=True), 1e-12
    )

    def scores(anchors: Sequence[str], items: Sequence[str]) -> np.ndarray:
        known = [a in als.item_ids for a in anchors]
        a_rows = als.item_ids.rows([a if k else items[0] for a, k in zip(anchors, known)])
        out = factors[a_rows] @ factors[als.item_ids.rows(items)].T
        out[~np.asarray(known)] = 0.0
        return np.asarray(out, dtype=np.float32)

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
    show_progress: bool = False,
) -> tuple[FineTunedRecommender, TrainResult]:
    """Fine-tune on ``split.train`` with early stopping on ``split.val``; return the fitted model.

    Cold-user splits need validation users (``cold_user_split(..., val_fraction > 0)``); their
    score is the mean Recall@20 over ``config.val_k_values``, and the training pairs also hold
    attribute-only user sides (``config.attribute_pairs``). With ``out_dir`` the run checkpoints
    into ``out_dir/checkpoint`` (so calling again after a crash resumes) and finally writes the
    versioned model directory there.
    """
    cold_user = split.protocol == "cold-user"
    if cold_user and split.val.empty:
        raise ValueError(
            "fine-tuning on a cold-user split validates on held-out users, and this split has "
            "none; make it with cold_user_split(..., val_fraction=0.1)"
        )
    train = split.train_dataset(dataset)
    item_template, user_template = _templates(dataset)
    pairs = build_pairs(
        train,
        item_template=item_template,
        user_template=user_template,
        history=config.history,
        max_pairs=config.max_pairs,
        seed=config.seed,
        attribute_pairs=config.attribute_pairs and cold_user,
    )
    base = encoder or make_encoder(config.encoder)
    if not isinstance(base, SentenceTransformerEncoder):
        raise ValueError(f"fine-tuning needs a sentence-transformers encoder, got {base.name}")
    base.max_seq_length = config.max_seq_length
    st_model = base.st_model
    out = Path(out_dir) if out_dir is not None else None
    if config.dapt_steps:
        st_model = adapt_to_domain(st_model, train, item_template, config, out, show_progress)
    val = validation_split(split)

    def validate(model: Any) -> float:
        probe = FineTunedRecommender(
            live_encoder(model, base), item_template=item_template, user_template=user_template
        ).fit(train)
        return validation_recall(probe, val, config.val_k_values)

    teacher = cf_teacher(train, config.seed) if config.distill_weight > 0 else None
    trainer = ContrastiveTrainer(
        config,
        st_model,
        pairs,
        validate=validate,
        checkpoint_dir=out,
        show_progress=show_progress,
        teacher=teacher,
    )
    result = trainer.train()
    if out is not None and trainer.peft_model is not None:
        trainer.peft_model.save_pretrained(str(out / "lora"))
    merged = trainer.merged_model()
    model = FineTunedRecommender(
        live_encoder(merged, base), item_template=item_template, user_template=user_template
    ).fit(train)
    if out is not None:
        model.save(out)
        write_report(out, config, train, split, result, n_pairs=len(pairs))
        shutil.rmtree(out / "checkpoint", ignore_errors=True)
        shutil.rmtree(out / "dapt", ignore_errors=True)
    return model, result


def adapt_to_domain(
    st_model: Any,
    train: Dataset,
    item_template: ItemTemplate,
    config: TrainConfig,
    out: Path | None = None,
    show_progress: bool = False,
) -> Any:
    """Continued pre-training on item text alone (``config.dapt_steps`` SimCSE steps).

    ``config.dapt_items`` picks the texts: those of items with interactions in ``train``, or the
    whole catalogue of ``train`` (new items included).

    Field dropout makes the two views differ beyond dropout noise; in-batch negatives are the
    other items' texts. Returns the model with the stage's LoRA adapters merged in, so the
    interaction stage starts from it (checkpointed in ``out/dapt``, so a crash resumes). Its
    adapter is kept in ``out/lora-dapt``: the interaction stage's ``out/lora`` applies on top of
    the base model with ``lora-dapt`` merged, not on the base model alone.
    """
    stage = replace(
        config,
        max_steps=config.dapt_steps,
        augment=True,
        logq_correction=False,
        distill_weight=0.0,
        fgm_epsilon=0.0,
        warmup_steps=min(config.warmup_steps, config.dapt_steps),
    )
    trainer = ContrastiveTrainer(
        stage,
        st_model,
        catalogue_pairs(train, item_template, items=config.dapt_items),
        checkpoint_dir=out / "dapt" if out is not None else None,
        show_progress=show_progress,
    )
    trainer.train()
    if out is not None and trainer.peft_model is not None:
        trainer.peft_model.save_pretrained(str(out / "lora-dapt"))
    return trainer.merged_model()


def write_report(
    out: Path, config: TrainConfig, train: Dataset, split: Split, result: TrainResult, n_pairs: int
) -> None:
    report = {
        "format_version": TRAIN_FORMAT_VERSION,
        "coldbrew": __version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} python {platform.python_version()}",
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
    }
    (out / "train.json").write_text(json.dumps(report, indent=2))
