"""Cheaper refits part by part (issue 29): what a refit reuses gives the model a fresh fit gives.

The hybrid's ``cf_map`` shares its ALS teacher with ``cf_f64`` and its TF-IDF with ``lexical``
(fitted once); started from a previous ``cf_map`` it keeps the SVD of an unchanged catalogue's
TF-IDF rows; started from a previous ``itemknn`` it keeps the similarities of the very same
interactions (and the transitions part its counts of the very same histories, both through
:class:`KeptMatrix`); and every part reads the dataset's users once between them. Each is checked
against a fresh read or fit on the same data.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from coldbrew.data.schema import Dataset, history_by_user
from coldbrew.models import Recommender, UserQuery
from coldbrew.models.cf import ItemKNNRecommender
from coldbrew.models.cfbase import KeptMatrix
from coldbrew.models.heads import CFMapRecommender
from coldbrew.models.recipes import ModelContext, _cf_map, _hybrid_parts
from coldbrew.models.sequence import TransitionRecommender
from coldbrew.models.users import _profiles, users_of
from coldbrew.text import HashingEncoder

QUERIES = (UserQuery(user_id="alice"), UserQuery(liked=("mouse",)), UserQuery(text="wool"))


def context() -> ModelContext:
    encoder = HashingEncoder(64)
    return ModelContext(encoder=lambda: encoder, cache_dir=None, seed=3)


def fit_shared(dataset: Dataset) -> dict[str, Recommender]:
    """The hybrid's parts that ``cf_map`` shares, fitted in the hybrid's order."""
    parts = _hybrid_parts(context())
    for name in ("cf_f64", "lexical", "cf_map"):
        parts[name].fit(dataset)
    return parts


def test_cf_map_sharing_the_hybrids_als_and_tfidf_scores_as_with_its_own(
    tiny_dataset: Dataset,
) -> None:
    """The shared teacher and TF-IDF are not fitted again by ``cf_map`` (the same factors
    object), and it scores exactly as a ``cf_map`` with its own teacher and TF-IDF; so does it
    after new items grew the shared TF-IDF's vocabulary."""
    parts = fit_shared(tiny_dataset)
    shared = parts["cf_map"]
    assert isinstance(shared, CFMapRecommender) and shared.teacher is parts["cf_f64"]
    factors = parts["cf_f64"].item_factors  # type: ignore[attr-defined]
    own = _cf_map(context()).fit(tiny_dataset)
    assert isinstance(own, CFMapRecommender) and own.teacher is not parts["cf_f64"]
    assert parts["cf_f64"].item_factors is factors  # type: ignore[attr-defined]
    np.testing.assert_allclose(shared.score(QUERIES), own.score(QUERIES), rtol=1e-5, atol=1e-6)
    new = pd.DataFrame({"item_id": ["scarf"], "title": ["Wool scarf zebra"]})
    parts["lexical"].add_items(new)  # the hybrid adds to every part, lexical first
    shared.add_items(new)
    own.add_items(new)
    np.testing.assert_allclose(shared.score(QUERIES), own.score(QUERIES), rtol=1e-5, atol=1e-6)


def changed_text(dataset: Dataset) -> Dataset:
    items = dataset.items.copy()
    items.loc[0, "title"] = "A renamed item about zebras"
    return replace(dataset, items=items)


def test_cf_map_keeps_the_svd_of_an_unchanged_catalogue(
    tiny_dataset: Dataset, tmp_path: Path
) -> None:
    """Started from a saved ``cf_map`` on the same catalogue, the SVD is kept (the loaded
    components themselves) and the scores are a fresh fit's; one item's text changed, it is
    learned again and matches a fresh fit on the changed catalogue."""
    previous = Recommender.load(fit_shared(tiny_dataset)["cf_map"].save(tmp_path / "cf_map"))
    assert isinstance(previous, CFMapRecommender) and previous.catalogue
    for dataset, kept in ((tiny_dataset, True), (changed_text(tiny_dataset), False)):
        started = _hybrid_parts(context())
        started["cf_map"].start_from(previous)
        for name in ("cf_f64", "lexical", "cf_map"):
            started[name].fit(dataset)
        fresh = fit_shared(dataset)["cf_map"]
        reused = started["cf_map"]
        assert isinstance(reused, CFMapRecommender) and isinstance(fresh, CFMapRecommender)
        assert (reused.components is previous.components) is kept
        np.testing.assert_allclose(reused.components, fresh.components, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(reused.score(QUERIES), fresh.score(QUERIES), atol=1e-5)


def test_itemknn_keeps_the_similarities_of_the_same_interactions(
    tiny_dataset: Dataset, tmp_path: Path
) -> None:
    """Started from a saved ItemKNN, a fit on the same interactions keeps its similarity
    matrix; one more like, and every row is learned again: both equal a fresh fit's."""
    previous = Recommender.load(ItemKNNRecommender(neighbors=3).fit(tiny_dataset).save(tmp_path))
    assert isinstance(previous, ItemKNNRecommender) and previous.learned_from
    more = pd.DataFrame([{"user_id": "alice", "item_id": "coffee", "value": 5.0, "timestamp": 9.0}])
    grown = replace(
        tiny_dataset, interactions=pd.concat([tiny_dataset.interactions, more], ignore_index=True)
    )
    for dataset, kept in ((tiny_dataset, True), (grown, False)):
        started = ItemKNNRecommender(neighbors=3)
        started.start_from(previous)
        started.fit(dataset)
        fresh = ItemKNNRecommender(neighbors=3).fit(dataset)
        assert (started.similarity is previous.similarity) is kept
        assert (started.similarity != fresh.similarity).nnz == 0
        assert started.learned_from == fresh.learned_from
    assert started.learned_from != previous.learned_from


def test_parts_fitted_on_one_dataset_read_its_users_once_each_their_own(
    tiny_dataset: Dataset,
) -> None:
    """Two parts fitted on the same dataset hold the histories and profiles a plain read
    gives (read once, :func:`users_of`), in dicts of their own: one forgets a user, the
    other still knows them."""
    first, second = ItemKNNRecommender(), ItemKNNRecommender()
    first.fit(tiny_dataset)
    second.fit(tiny_dataset)
    assert first._history == history_by_user(tiny_dataset.positives()) == second._history
    assert first._profiles == _profiles(tiny_dataset) == second._profiles
    first.forget_user("alice")
    assert "alice" not in first.known_users() and "alice" in second.known_users()
    assert users_of(tiny_dataset)[0]["alice"] == ["boots", "tent", "bottle"]


def test_transitions_keep_the_counts_of_the_same_histories(
    tiny_dataset: Dataset, tmp_path: Path
) -> None:
    """Started from a saved transitions part, a fit on the same histories keeps its counts;
    one more like, or another window, and they are counted again: each equals a fresh fit's."""
    previous = Recommender.load(TransitionRecommender(window=2).fit(tiny_dataset).save(tmp_path))
    assert isinstance(previous, TransitionRecommender) and previous.learned_from
    more = pd.DataFrame([{"user_id": "alice", "item_id": "coffee", "value": 5.0, "timestamp": 9.0}])
    grown = replace(
        tiny_dataset, interactions=pd.concat([tiny_dataset.interactions, more], ignore_index=True)
    )
    for dataset, window, kept in (
        (tiny_dataset, 2, True),
        (grown, 2, False),
        (tiny_dataset, 3, False),
    ):
        started = TransitionRecommender(window=window)
        started.start_from(previous)
        started.fit(dataset)
        fresh = TransitionRecommender(window=window).fit(dataset)
        assert (started.transitions is previous.transitions) is kept
        assert started.transitions.nnz and (started.transitions != fresh.transitions).nnz == 0
        assert started.learned_from == fresh.learned_from
    assert started.learned_from == previous.learned_from  # the key reads histories, not window


def learned(key: str) -> KeptMatrix:
    kept = KeptMatrix()
    kept.take(key, 0)
    return kept


def test_a_kept_matrix_comes_back_once_for_its_own_key_and_size() -> None:
    """:class:`KeptMatrix` hands back the offered matrix only to a fit that reads the data it
    was learned from (same key) at the same catalogue size, and only once; the key taken is
    the one recorded, whatever came back."""
    matrix = sp.identity(3, dtype=np.float32, format="csr")
    for key, n, back in (("a", 3, True), ("b", 3, False), ("a", 4, False), ("", 3, False)):
        kept = KeptMatrix()
        kept.offer(learned("a"), matrix)
        assert (kept.take(key, n) is matrix) is back
        assert kept.key == key
        assert kept.take(key, n) is None  # taken (or dropped) once
    unknown = KeptMatrix()
    unknown.offer(learned(""), matrix)  # learned from unknown data: nothing to keep
    assert unknown.take("", 3) is None


def test_a_kept_matrix_key_survives_saving_but_not_what_was_kept() -> None:
    """The key round-trips through :meth:`KeptMatrix.state`; a model saved without one loads
    with "" (learn again); loading forgets a matrix offered before."""
    saved = learned("abc").state()
    loaded = KeptMatrix()
    loaded.offer(learned("abc"), sp.identity(2, dtype=np.float32, format="csr"))
    loaded.set_state(saved)
    assert loaded.key == "abc"
    assert loaded.take("abc", 2) is None
    old = KeptMatrix()
    old.set_state({})
    assert old.key == ""
