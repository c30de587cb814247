"""The self-attentive sequential model: it learns the order of likes, masks history, round-trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chains import chains as chain_data
from coldbrew.data.schema import Dataset
from coldbrew.models import Recommender, UserQuery
from coldbrew.models.sasrec import SASRecRecommender
from coldbrew.models.sasrecnet import training_windows

N_ITEMS = 30


def chains(with_time: bool = True) -> Dataset:
    """Users who like runs of 5 along the chain i0 → i1 → … (:func:`chains.chains`)."""
    return chain_data(N_ITEMS, 150, 5, with_time)


def small(seed: int = 1) -> SASRecRecommender:
    return SASRecRecommender(
        hidden=16,
        blocks=1,
        dropout=0.0,
        learning_rate=0.01,
        batch_size=16,
        max_epochs=10,
        patience=10,
        seed=seed,
    )


@pytest.fixture(scope="module")
def fitted() -> SASRecRecommender:
    return small().fit(chains())


def test_it_learns_what_comes_next_in_order(fitted: SASRecRecommender) -> None:
    hits = 0
    for start in range(2, N_ITEMS - 3):
        liked = (f"i{start}", f"i{start + 1}")
        top = fitted.recommend(UserQuery(liked=liked), k=1).ids
        hits += top == [f"i{start + 2}"]
    # chance is one in 28 per query; the item before the run is as co-liked but never next
    assert hits >= 0.8 * (N_ITEMS - 5), hits
    assert max(fitted.validation) > 0.5  # the inner validation saw it too (chance: 10/28)


def test_scores_every_item_and_masks_history(fitted: SASRecRecommender) -> None:
    queries = [UserQuery(user_id="u3"), UserQuery(liked=("i7",)), UserQuery()]
    scores = fitted.score(queries)
    assert scores.shape == (3, N_ITEMS) and np.isfinite(scores).all()
    liked = fitted.resolve(queries[0]).liked
    recs = fitted.recommend(queries[0], k=N_ITEMS)
    assert len(recs) == N_ITEMS - len(liked) and not set(recs.ids) & set(liked)
    assert fitted.is_fallback(UserQuery())  # nothing liked: popularity


def test_the_same_seed_gives_the_same_model() -> None:
    data = chains()
    one = SASRecRecommender(hidden=8, blocks=1, max_epochs=3, seed=5).fit(data)
    two = SASRecRecommender(hidden=8, blocks=1, max_epochs=3, seed=5).fit(data)
    other = SASRecRecommender(hidden=8, blocks=1, max_epochs=3, seed=6).fit(data)
    query = [UserQuery(liked=("i3", "i4"))]
    np.testing.assert_array_equal(one.score(query), two.score(query))
    assert one.validation == two.validation
    assert not np.array_equal(one.score(query), other.score(query))


def test_save_load_keeps_scores_and_new_items_go_below(
    fitted: SASRecRecommender, tmp_path: Path
) -> None:
    query = [UserQuery(user_id="u3"), UserQuery(liked=("i2", "i9"))]
    loaded = Recommender.load(fitted.save(tmp_path / "m"))
    assert isinstance(loaded, SASRecRecommender)
    np.testing.assert_array_equal(loaded.score(query), fitted.score(query))
    assert loaded.validation == fitted.validation
    loaded.add_items(pd.DataFrame({"item_id": ["new"], "title": ["y"]}))
    scores = loaded.score(query)
    assert scores.shape == (2, N_ITEMS + 1)
    assert (scores[:, -1] < scores[:, :-1].min(axis=1)).all()  # no interactions: below all


def test_without_timestamps_it_stays_silent() -> None:
    model = SASRecRecommender(hidden=8, blocks=1, max_epochs=2).fit(chains(with_time=False))
    assert model.describe() == "sasrec (silent: no timestamps)" and model.net is None
    assert not model.score([UserQuery(liked=("i5",))]).any()


def test_long_histories_train_as_windows_that_cover_every_step() -> None:
    windows = training_windows([np.arange(7)], 3)  # rows 0..6 as indices 1..7
    assert windows.tolist() == [[4, 5, 6, 7], [1, 2, 3, 4]]
    targets = windows[:, 1:][windows[:, 1:] > 0]
    assert sorted(targets.tolist()) == list(range(2, 8))  # each step after the first, once


@pytest.mark.parametrize(
    "kwargs",
    [{"hidden": 0}, {"hidden": 10, "heads": 3}, {"history_length": 1}, {"dropout": 1.0}],
)
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SASRecRecommender(**kwargs)  # type: ignore[arg-type]


def test_the_models_and_the_service_load_without_importing_torch() -> None:
    """The model table lists SASRec, yet a service that never trains or loads one does not
    import PyTorch (~115 MB of libraries resident, measured at a million items)."""
    import subprocess
    import sys

    probe = (
        "import sys; import coldbrew.models, coldbrew.live.engine, coldbrew.serve.app; "
        "from coldbrew.models.registry import model_classes; model_classes()['sasrec']; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout
