"""The cross-encoder teacher: pair sampling, reranking, a tiny real run, distillation, resume."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from coldbrew.data.schema import Dataset
from coldbrew.models import UserQuery, ZeroShotRecommender
from coldbrew.text import HashingEncoder
from coldbrew.text.templates import ItemTemplate
from coldbrew.train.cross import CrossEncoderReranker, sample_entries
from coldbrew.train.pairs import TrainingPair, build_pairs, item_texts
from planted import GROUPS, group_precision, planted, planted_split, tiny_config


def test_sampled_entries_hold_every_positive_and_only_true_negatives() -> None:
    batch = [
        TrainingPair(("a",), "A", "a1", "x"),
        TrainingPair(("b",), "B", "b1", "a1"),  # its anchor a1 is no negative for it
        TrainingPair(("c",), "A", "a1", "y"),  # the same item again: no negative for row 0
        TrainingPair(("d",), "D", "d1"),
        TrainingPair(("e",), "E", "e1"),
    ]
    rows, cols = sample_entries(batch, 2, np.random.default_rng(0))
    for i, pair in enumerate(batch):
        mine = cols[rows == i]
        assert i in mine  # the positive
        negatives = [j for j in mine if j != i]
        assert 1 <= len(negatives) <= 2 and len(set(negatives)) == len(negatives)
        for j in negatives:
            assert batch[j].item_id not in (pair.item_id, pair.anchor_id)
    again = sample_entries(batch, 2, np.random.default_rng(0))
    assert (again[0] == rows).all() and (again[1] == cols).all()  # a function of the rng


class LengthScorer:
    """A stand-in teacher: prefers items with longer texts, whatever the user."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    def score(self, queries: Sequence[str], items: Sequence[str]) -> np.ndarray:
        self.pairs.extend(zip(queries, items))
        return np.array([float(len(i)) for i in items], dtype=np.float32)


def test_reranker_reorders_the_first_stage_top_within_the_candidates(
    tiny_dataset: Dataset,
) -> None:
    first = ZeroShotRecommender(HashingEncoder(dim=64)).fit(tiny_dataset)
    texts = item_texts(tiny_dataset, ItemTemplate(("title",)))
    scorer = LengthScorer()
    reranker = CrossEncoderReranker(first, scorer, texts, depth=4, history=2)  # type: ignore[arg-type]
    query = UserQuery(user_id="alice")
    allowed = ["jacket", "parka", "shirt", "keyboard", "mouse", "skillet", "coffee", "tent"]
    before = first.recommend(query, k=6, candidates=allowed)
    after = reranker.recommend_batch([query], k=6, candidates=allowed)[0]
    head = before.ids[:4]
    # the top 4 are the first stage's, ordered by the teacher (longest text first)
    assert sorted(after.ids[:4]) == sorted(head)
    lengths = [len(texts[i]) for i in after.ids[:4]]
    assert lengths == sorted(lengths, reverse=True)
    assert after.ids[4:] == before.ids[4:6]  # below them, the first stage's order
    assert list(after.scores) == sorted(after.scores, reverse=True)
    assert set(after.ids) <= set(allowed) and "tent" not in after.ids  # alice liked the tent
    # user sides: her two latest liked items, her own words, her attributes
    sides = {q for q, _ in scorer.pairs}
    assert texts["bottle"] in sides and texts["tent"] in sides and texts["boots"] not in sides
    assert "I love the outdoors" in sides
    assert len(sides) == 4 and len(scorer.pairs) == 4 * 4
    # nothing to read: the first stage's order stands
    empty = reranker.recommend_batch([UserQuery(liked=("nope",))], k=3)[0]
    assert empty.ids == first.recommend(UserQuery(liked=("nope",)), k=3).ids
    with pytest.raises(ValueError, match="depth"):
        CrossEncoderReranker(first, scorer, texts, depth=0)  # type: ignore[arg-type]


def group_accuracy(scorer: object) -> float:
    """Share of each planted item's top-2 partners, by teacher score, in its own group."""
    titles = [t for g in GROUPS for t in g]
    group = [g for g, ts in enumerate(GROUPS) for _ in ts]
    n = len(titles)
    left = [titles[a] for a in range(n) for b in range(n)]
    right = [titles[b] for a in range(n) for b in range(n)]
    scores = scorer.score(left, right).reshape(n, n)  # type: ignore[attr-defined]
    np.fill_diagonal(scores, -np.inf)
    top = np.argsort(-scores, axis=1)[:, :2]
    return float(np.mean([group[j] == group[a] for a in range(n) for j in top[a]]))


def teacher_config(**kw: object):  # type: ignore[no-untyped-def]
    values: dict[str, object] = {
        "max_steps": 30,
        "eval_every": 30,
        "distill_weight": 1.0,
        "distill_teacher": "cross-encoder",
        "distill_loss": "margin-mse",
        "teacher_steps": 30,
        "teacher_batch_size": 8,
        "teacher_learning_rate": 3e-4,
        "teacher_eval_every": 30,
        "rerank_depth": 12,
    }
    values.update(kw)
    return tiny_config(**values)


@pytest.mark.slow
def test_cross_encoder_teacher_learns_the_planted_groups_and_teaches_the_student(
    tmp_path: Path,
) -> None:
    import torch

    from coldbrew.text.factory import make_encoder
    from coldbrew.train.cross import CrossEncoder
    from coldbrew.train.run import fine_tune

    torch.manual_seed(0)
    untrained = CrossEncoder.from_sentence_transformer(make_encoder("default").st_model, 32)
    assert group_accuracy(untrained) < 0.5
    data = planted()
    before = group_precision(ZeroShotRecommender(make_encoder("default")).fit(data))
    out = tmp_path / "m"
    model, result = fine_tune(data, planted_split(data), teacher_config(), out)

    report = json.loads((out / "train.json").read_text())
    taught = report["stages"]["teacher"]
    assert taught["last_loss"] < taught["first_loss"]
    assert [v["step"] for v in taught["validation"]] == [30]  # a fresh head is never "best"
    assert "val_ndcg@20" in taught["validation"][0]
    teacher = CrossEncoder.load(out / "teacher")
    assert group_accuracy(teacher) > 0.7  # it learned which made-up words belong together
    assert not (out / "teacher-run").exists()  # checkpoints go once the run is done
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5])
    assert group_precision(model) > before + 0.2

    # a saved teacher teaches a later run directly, without training a new one
    again = fine_tune(
        data, planted_split(data), teacher_config(max_steps=2, distill_teacher=str(out / "teacher"))
    )
    assert again[1].steps == 2 and all(np.isfinite(again[1].losses))
    with pytest.raises(FileNotFoundError, match="not a saved cross-encoder"):
        CrossEncoder.load(tmp_path)


@pytest.mark.slow
def test_interrupted_teacher_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    import torch

    from coldbrew.text.factory import make_encoder
    from coldbrew.train.cross import CrossEncoder, CrossEncoderTrainer

    pairs = build_pairs(planted(), item_template=ItemTemplate(("title",)))
    cfg = tiny_config(max_steps=4, batch_size=4, checkpoint_every=1, method="full")

    def trainer(checkpoint: Path | None) -> CrossEncoderTrainer:
        torch.manual_seed(0)
        scorer = CrossEncoder.from_sentence_transformer(make_encoder("default").st_model, 16)
        return CrossEncoderTrainer(cfg, scorer, pairs, checkpoint_dir=checkpoint)

    straight = trainer(None)
    full = straight.train()
    trainer(tmp_path).train(stop_after=2)
    resumed = trainer(tmp_path)
    again = resumed.train()
    assert again.losses == pytest.approx(full.losses, rel=1e-5)
    a, b = straight._trainable_state(), resumed._trainable_state()
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), atol=1e-6)
