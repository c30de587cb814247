"""A cross-encoder teacher: one transformer reads the user side and an item together.

The bi-encoder scores a user and an item by the cosine of two vectors computed apart, so an
item's vector is computed once and ranking a catalogue is one matrix product. A cross-encoder
reads ``[CLS] query [SEP] item [SEP]`` in one pass and can match words across the two texts, at
the price of one transformer pass per (query, item) pair. coldbrew trains one on the same
interaction pairs as the bi-encoder (starting from the same weights, with a fresh scoring head)
and uses it as the teacher the bi-encoder is distilled from (``distill_teacher="cross-encoder"``):
the student keeps the bi-encoder's speed and learns the teacher's finer ordering.

To rank for a user the cross-encoder re-orders the bi-encoder's top items
(:class:`CrossEncoderReranker`): scoring a whole catalogue pair by pair would take minutes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.models.base import Recommendations, UserQuery
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.train.config import TrainConfig
from coldbrew.train.contrastive import ContrastiveTrainer, Teacher, Validator
from coldbrew.train.losses import _require_torch, in_batch_cross_entropy
from coldbrew.train.pairs import TrainingPair

CONFIG_FILE = "cross_encoder.json"


class CrossEncoder:
    """A transformer with a one-logit head over (query, item) text pairs."""

    def __init__(self, model: Any, tokenizer: Any, max_length: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def from_sentence_transformer(cls, st_model: Any, max_length: int) -> CrossEncoder:
        """A copy of ``st_model``'s transformer with a new, randomly initialised scoring head."""
        from transformers import AutoModelForSequenceClassification

        body = st_model[0].auto_model
        config = type(body.config).from_dict(body.config.to_dict())
        config.num_labels = 1
        model = AutoModelForSequenceClassification.from_config(config)  # type: ignore[no-untyped-call]
        model.base_model.load_state_dict(body.state_dict())
        return cls(model.to(body.device), st_model.tokenizer, max_length)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> CrossEncoder:
        """A cross-encoder :meth:`save` wrote, on ``device`` (a resolved PyTorch device)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(path)
        if not (path / CONFIG_FILE).exists():
            raise FileNotFoundError(
                f"{path} is not a saved cross-encoder (no {CONFIG_FILE}); a training run with "
                "distill_teacher='cross-encoder' writes one to its teacher/ directory"
            )
        settings = json.loads((path / CONFIG_FILE).read_text())
        model = AutoModelForSequenceClassification.from_pretrained(str(path)).to(device)
        model.eval()
        return cls(model, AutoTokenizer.from_pretrained(str(path)), int(settings["max_length"]))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(path), safe_serialization=True)
        self.tokenizer.save_pretrained(str(path))
        (path / CONFIG_FILE).write_text(json.dumps({"max_length": self.max_length}, indent=2))
        return path

    def logits(self, queries: Sequence[str], items: Sequence[str]) -> Any:
        """One logit per pair (on the model's device), with gradients when the model is in
        training mode."""
        features = self.tokenizer(
            list(queries),
            list(items),
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
        ).to(self.model.device)
        return self.model(**features).logits[:, 0]

    def score(
        self, queries: Sequence[str], items: Sequence[str], batch_size: int = 128
    ) -> np.ndarray:
        """Logits of many pairs, without gradients."""
        torch = _require_torch()
        if len(queries) != len(items):
            raise ValueError(f"{len(queries)} queries but {len(items)} items")
        was_training = self.model.training
        self.model.eval()
        out = np.zeros(len(queries), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(queries), batch_size):
                stop = start + batch_size
                out[start:stop] = self.logits(queries[start:stop], items[start:stop]).cpu().numpy()
        self.model.train(was_training)
        return out


def sample_entries(
    batch: Sequence[TrainingPair], negatives: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the batch matrix a cross-encoder scores: each diagonal (the positive)
    and up to ``negatives`` other columns per row whose item is neither the positive nor the
    anchor item."""
    rows, cols = [], []
    for i, pair in enumerate(batch):
        rows.append(i)
        cols.append(i)
        others = [
            j
            for j, other in enumerate(batch)
            if other.item_id != pair.item_id and other.item_id != pair.anchor_id
        ]
        if others:
            pick = rng.choice(others, size=min(negatives, len(others)), replace=False)
            rows.extend([i] * len(pick))
            cols.extend(int(j) for j in pick)
    return np.asarray(rows), np.asarray(cols)


class CrossEncoderTrainer(ContrastiveTrainer):
    """Trains a :class:`CrossEncoder` (every weight) with the bi-encoder trainer's loop.

    Same batches, checkpoints, resume, early stopping (on validation NDCG@20, from the first
    check on) and logQ correction; the loss is the
    in-batch cross-entropy over the positive and ``teacher_negatives`` sampled in-batch
    negatives per query (scoring the full batch matrix would take batch² passes).
    """

    def __init__(
        self,
        config: TrainConfig,
        scorer: CrossEncoder,
        pairs: Sequence[TrainingPair],
        *,
        validate: Validator | None = None,
        checkpoint_dir: str | Path | None = None,
        show_progress: bool = False,
    ) -> None:
        super().__init__(
            config,
            scorer.model,
            pairs,
            validate=validate,
            checkpoint_dir=checkpoint_dir,
            show_progress=show_progress,
        )
        self.scorer = scorer
        self.progress_label = "teacher"
        # reranking a top-30 barely moves Recall@20: NDCG@20 sees the order inside it
        self.metric_name = "ndcg@20"
        # a fresh head scores at random: the starting weights are no candidate for "best"
        self.validate_at_start = False

    def _prepare_model(self) -> list[Any]:
        torch = _require_torch()
        torch.manual_seed(self.config.seed)
        for param in self.st_model.parameters():
            param.requires_grad_(True)
        return [p for p in self.st_model.parameters() if p.requires_grad]

    def _loss(self, batch: list[TrainingPair], rng: np.random.Generator) -> Any:
        torch = _require_torch()
        rows, cols = sample_entries(batch, self.config.distillation.teacher_negatives, rng)
        logits = self.scorer.logits([batch[r].query for r in rows], [batch[c].item for c in cols])
        device = logits.device
        scores = torch.full((len(batch), len(batch)), float("-inf"), device=device)
        where = (torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device))
        scores = scores.index_put(where, logits)
        log_q = None
        if self.config.loss.logq_correction:
            log_q = torch.tensor(
                [self._log_q[p.item_id] for p in batch], dtype=torch.float32, device=device
            )
        return in_batch_cross_entropy(
            scores, [p.item_id for p in batch], [p.anchor_id for p in batch], log_q
        )


def cross_teacher(scorer: CrossEncoder, negatives: int) -> Teacher:
    """The cross-encoder as a distillation teacher: its logits for the positive and
    ``negatives`` sampled in-batch negatives of each row (NaN elsewhere)."""

    def scores(batch: Sequence[TrainingPair], rng: np.random.Generator) -> np.ndarray:
        rows, cols = sample_entries(batch, negatives, rng)
        out = np.full((len(batch), len(batch)), np.nan, dtype=np.float32)
        out[rows, cols] = scorer.score(
            [batch[r].query for r in rows], [batch[c].item for c in cols]
        )
        return out

    return scores


class CrossEncoderReranker:
    """Ranks as ``first_stage`` does, then re-orders its top ``depth`` by the cross-encoder.

    The user side of each pair is one of the user's ``history`` latest liked items' text, or
    their own words and rendered attributes (the same user sides the training pairs have); an
    item's score is the mean of its logits against them. A user with nothing to read keeps the
    first stage's order. It answers :meth:`recommend_batch` like a model, so
    :func:`coldbrew.bench.evaluate.evaluate` scores it.
    """

    def __init__(
        self,
        first_stage: ZeroShotRecommender,
        scorer: CrossEncoder,
        item_texts: dict[str, str],
        *,
        depth: int = 30,
        history: int = 3,
    ) -> None:
        if depth < 1 or history < 1:
            raise ValueError(f"depth and history must be at least 1, got {depth} and {history}")
        self.first_stage = first_stage
        self.scorer = scorer
        self.item_texts = item_texts
        self.depth = depth
        self.history = history

    def user_sides(self, query: UserQuery) -> list[str]:
        resolved = self.first_stage.resolve(query)
        sides = [
            self.item_texts[i] for i in resolved.liked[-self.history :] if i in self.item_texts
        ]
        if resolved.text and resolved.text.strip():
            sides.append(resolved.text.strip())
        rendered = self.first_stage.user_template.render_attributes(resolved.attributes)
        if rendered:
            sides.append(rendered)
        return sides

    def recommend_batch(
        self,
        queries: Sequence[UserQuery],
        k: int = 10,
        *,
        exclude: Sequence[Iterable[str]] | None = None,
        candidates: Iterable[str] | None = None,
        exclude_seen: bool = True,
    ) -> list[Recommendations]:
        first = self.first_stage.recommend_batch(
            queries,
            max(k, self.depth),
            exclude=exclude,
            candidates=candidates,
            exclude_seen=exclude_seen,
        )
        out = []
        for query, recs in zip(queries, first):
            sides = self.user_sides(query)
            head = recs.ids[: self.depth]
            if not sides or not head:
                out.append(Recommendations(recs.ids[:k], recs.scores[:k]))
                continue
            left = [s for s in sides for _ in head]
            right = [self.item_texts.get(i, "") for _ in sides for i in head]
            logits = self.scorer.score(left, right).reshape(len(sides), len(head)).mean(axis=0)
            order = np.argsort(-logits, kind="stable")
            ids = [head[i] for i in order] + recs.ids[self.depth :]
            # the tail keeps the first stage's order, below every reranked item
            floor = float(logits.min()) - 1.0
            tail = floor - np.arange(1, len(recs.ids) - len(head) + 1, dtype=np.float32)
            scores = np.concatenate([logits[order], tail]).astype(np.float32)
            out.append(Recommendations(ids[:k], scores[:k]))
        return out
