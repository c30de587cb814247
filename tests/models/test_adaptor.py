"""The adaptor over frozen text vectors: whitening, a map trained on co-interactions, transfer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from coldbrew.data.schema import Dataset, DatasetSpec
from coldbrew.models import Recommender, UserQuery
from coldbrew.models.adapted import AdaptedZeroShotRecommender
from coldbrew.models.adaptor import MapSettings, Whitening, pooled_validation, train_map
from coldbrew.text import HashingEncoder
from coldbrew.text.encoder import l2_normalize

DIM = 8
GROUPS = 4


class TableEncoder:
    """Looks each text's vector up in a table: planted item vectors for the tests."""

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    @property
    def name(self) -> str:
        return "table"

    @property
    def dim(self) -> int:
        return DIM

    def config(self) -> dict[str, Any]:
        return {"type": "table"}

    def encode(self, texts: Sequence[str], *, kind: str = "passage", **_: Any) -> np.ndarray:
        return l2_normalize(np.stack([self.table.get(t, np.zeros(DIM)) for t in texts]))


def planted_catalogue(name: str, seed: int, items: int = 240, users: int = 160) -> Dataset:
    """Items whose group shows in four dimensions and four equally strong noise dimensions; each
    user likes items of one group. Whitening cannot tell signal from noise here (both have the
    same variance); co-interactions can."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, GROUPS, items)
    vectors = np.concatenate(
        [
            np.eye(GROUPS)[group] * 1.0 + 0.3 * rng.normal(size=(items, GROUPS)),
            rng.normal(scale=0.6, size=(items, DIM - GROUPS)),
        ],
        axis=1,
    )
    ids = [f"{name}-{i}" for i in range(items)]
    rows = []
    for u in range(users):
        mine = np.flatnonzero(group == u % GROUPS)
        for t, i in enumerate(rng.choice(mine, 8, replace=False)):
            rows.append((f"{name}-u{u}", ids[i], 5.0, float(t)))
    frame = pd.DataFrame({"item_id": ids, "title": ids})
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"])
    spec = DatasetSpec(name=name, item_text=("title",), positive_threshold=4.0)
    TABLE.update(zip(ids, vectors))
    return Dataset(spec, frame, inter)


TABLE: dict[str, np.ndarray] = {}


def test_whitening_gives_identity_covariance_on_its_fit_data() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16)) + 2.0
    white = Whitening.fit(x).transform(x)
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(16), atol=1e-3)
    np.testing.assert_allclose(white.mean(axis=0), 0.0, atol=1e-3)


def test_whitening_drops_directions_a_small_catalogue_never_varied_in() -> None:
    x = np.random.default_rng(4).normal(size=(5, 16))  # fewer items than dimensions
    whitening = Whitening.fit(x)
    assert np.isfinite(whitening.matrix).all()
    assert np.linalg.matrix_rank(whitening.matrix) == 4
    with pytest.raises(ValueError, match="shrinkage"):
        Whitening.fit(x, shrinkage=-1.0)


def test_the_map_learns_what_carries_to_held_out_items() -> None:
    model = AdaptedZeroShotRecommender(TableEncoder(TABLE), choices=("whitened",), holdout=0.2).fit(
        planted_catalogue("a", 1)
    )
    mapping, history = train_map([model.corpus()], MapSettings(epochs=8, learning_rate=0.01))
    assert max(history[1:]) > history[0] + 0.02, history
    assert not np.allclose(mapping, np.eye(DIM))


def test_fit_chooses_on_validation_and_round_trips(tmp_path: Path) -> None:
    encoder = TableEncoder(TABLE)
    data = planted_catalogue("b", 2)
    model = AdaptedZeroShotRecommender(encoder, holdout=0.2, learning_rate=0.01).fit(data)
    assert set(model.validation) >= {"raw", "whitened", "adapted"}
    assert model.chosen == max(("raw", "whitened", "adapted"), key=model.validation.__getitem__)
    query = UserQuery(liked=("b-0", "b-1"))
    loaded = Recommender.load(model.save(tmp_path / "m"), encoder=encoder)
    assert isinstance(loaded, AdaptedZeroShotRecommender)
    assert loaded.chosen == model.chosen
    np.testing.assert_array_equal(loaded.mapping, model.mapping)
    a, b = model.recommend(query, k=10), loaded.recommend(query, k=10)
    assert a.ids == b.ids
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)


def test_a_map_trained_on_one_catalogue_applies_to_another() -> None:
    encoder = TableEncoder(TABLE)
    source = AdaptedZeroShotRecommender(encoder, choices=("whitened",), holdout=0.2)
    mapping, _ = train_map(
        [source.fit(planted_catalogue("c", 3)).corpus()], MapSettings(epochs=8, learning_rate=0.01)
    )
    target_data = planted_catalogue("d", 4)
    target = AdaptedZeroShotRecommender(encoder, choices=("adapted",), mapping=mapping)
    target.fit(target_data.with_interactions(target_data.interactions.iloc[:0]))
    np.testing.assert_array_equal(target.mapping, mapping)
    assert target.validation == {}  # nothing of its own to train or choose on
    plain = AdaptedZeroShotRecommender(encoder, choices=("whitened",), holdout=0.2)
    judged = plain.fit(target_data).corpus()
    adapted, whitened = pooled_validation([judged], mapping), pooled_validation([judged], None)
    assert adapted is not None and whitened is not None
    assert adapted > whitened + 0.01


def test_the_opt_in_recipes_build_the_adapted_part(tiny_dataset: Dataset) -> None:
    from coldbrew.models.hybrid import HybridRecommender
    from coldbrew.models.recipes import MODEL_NAMES, ModelContext, make_model

    ctx = ModelContext(lambda: HashingEncoder(64), None, seed=42)
    opt_in = {"adapted_zeroshot", "whitened_zeroshot", "hybrid_adapted", "hybrid_whitened"}
    assert not opt_in & set(MODEL_NAMES)
    whitened = make_model("whitened_zeroshot", ctx).fit(tiny_dataset)
    assert isinstance(whitened, AdaptedZeroShotRecommender) and whitened.chosen == "whitened"
    hybrid = make_model("hybrid_adapted", ctx).fit(tiny_dataset)
    assert isinstance(hybrid, HybridRecommender)
    assert isinstance(hybrid.parts["lm_adapted"], AdaptedZeroShotRecommender)
    assert len(hybrid.recommend(UserQuery(liked=("tent",)), k=3)) == 3
    plain = make_model("hybrid_whitened", ctx).fit(tiny_dataset)
    assert isinstance(plain, HybridRecommender)
    part = plain.parts["lm_whitened"]
    assert isinstance(part, AdaptedZeroShotRecommender) and part.chosen == "whitened"
    assert set(plain.parts) == set(make_model("hybrid", ctx).parts) | {"lm_whitened"}
    assert len(plain.recommend(UserQuery(liked=("tent",)), k=3)) == 3
