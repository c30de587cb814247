from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coldbrew.bench.evaluate import build_queries, evaluate
from coldbrew.data.schema import Dataset
from coldbrew.eval.metrics import recall_at_k
from coldbrew.eval.protocols import (
    Split,
    cold_item_split,
    cold_user_split,
    hold_out,
    k_shot,
    latest_split,
    next_item_split,
    reveal_earliest,
    warm_split,
)
from coldbrew.models import (
    PopularityRecommender,
    RandomRecommender,
    UserQuery,
    ZeroShotRecommender,
)
from coldbrew.text import HashingEncoder
from topics import two_topics


def synthetic(n_users: int = 60, n_items: int = 300, seed: int = 0) -> Dataset:
    return two_topics(n_users, n_items, per_user=12, seed=seed, random_times=True)


def test_cold_item_split_partitions_by_item_and_is_deterministic() -> None:
    ds = synthetic()
    split = cold_item_split(ds, seed=42)
    cold = set(split.test["item_id"]) | set(split.val["item_id"])
    assert not cold & set(split.train["item_id"])
    assert set(split.candidates or []) == set(split.test["item_id"])
    total = len(split.train) + len(split.val) + len(split.test)
    assert total + split.info["warm_val"] + split.info["warm_test"] == len(ds.positives())
    again = cold_item_split(ds, seed=42)
    pd.testing.assert_frame_equal(split.test, again.test)
    other = cold_item_split(ds, seed=7)
    assert set(other.test["item_id"]) != set(split.test["item_id"])


def test_split_round_trips_through_disk(tmp_path: Path) -> None:
    split = cold_item_split(synthetic(), seed=1)
    loaded = Split.load(split.save(tmp_path / "s"))
    pd.testing.assert_frame_equal(loaded.train, split.train)
    assert loaded.candidates == split.candidates and loaded.info == split.info


def test_text_model_beats_random_on_cold_items() -> None:
    ds = synthetic()
    split = cold_item_split(ds, seed=42)
    train = split.train_dataset(ds)
    lm = evaluate(ZeroShotRecommender(HashingEncoder()).fit(train), split).metrics
    rnd = evaluate(RandomRecommender().fit(train), split).metrics
    pop = evaluate(PopularityRecommender().fit(train), split).metrics
    # the topic halves the candidates: text finds every relevant item within the top 20
    assert lm["recall@20"] > 0.95 > 0.7 > rnd["recall@20"]
    for metrics in (lm, rnd, pop):
        assert all(0.0 <= v <= 1.0 for v in metrics.values())


def test_cold_user_split_holds_users_out_and_reveals_the_earliest() -> None:
    ds = synthetic()
    split = cold_user_split(ds, seed=42)
    cold = set(split.test["user_id"])
    assert len(cold) == split.info["cold_users"] == 12  # 20% of 60
    assert not cold & set(split.train["user_id"])
    assert len(split.train) + len(split.test) == len(ds.positives())
    view = k_shot(split, 3)
    user = view.users[0]
    history = split.test[split.test["user_id"] == user].sort_values("timestamp", kind="stable")
    assert view.revealed[user] == tuple(history["item_id"][:3])
    assert view.relevant[user] == set(history["item_id"][3:])
    assert k_shot(split, 0).revealed[user] == ()
    again = cold_user_split(ds, seed=42)
    pd.testing.assert_frame_equal(split.test, again.test)
    assert set(cold_user_split(ds, seed=7).test["user_id"]) != cold


def test_k_shot_leaves_out_and_counts_users_with_too_few_interactions() -> None:
    ds = synthetic()  # every user has 12 positives
    split = cold_user_split(ds, k_values=(0, 11, 12), seed=1)
    assert split.info["users_per_k"] == {"0": 12, "11": 12, "12": 0}
    assert split.info["left_out_per_k"]["12"] == 12
    view = k_shot(split, 12)
    assert view.users == [] and view.left_out == 12
    assert all(len(r) == 1 for r in k_shot(split, 11).relevant.values())


def test_cold_user_split_round_trips_through_disk(tmp_path: Path) -> None:
    split = cold_user_split(synthetic(), val_fraction=0.1, seed=3)
    assert split.info["val_users"] == 6
    loaded = Split.load(split.save(tmp_path / "s"))
    assert loaded.info == split.info
    assert k_shot(loaded, 5).revealed == k_shot(split, 5).revealed
    assert k_shot(loaded, 5, part="val").relevant == k_shot(split, 5, part="val").relevant


def test_warm_split_is_per_user_and_deterministic() -> None:
    ds = synthetic()
    split = warm_split(ds, seed=42)
    assert len(split.train) + len(split.val) + len(split.test) == len(ds.positives())
    per_user = split.test.groupby("user_id").size()
    assert (per_user == round(0.2 * 12)).all() and len(per_user) == 60
    pd.testing.assert_frame_equal(split.test, warm_split(ds, seed=42).test)
    assert split.candidates is None
    with_val = warm_split(ds, val_fraction=0.1, seed=42)
    assert (with_val.val.groupby("user_id").size() == 1).all()
    key = ["user_id", "item_id"]
    merged = split.train.merge(split.test, on=key)
    assert merged.empty


def test_warm_latest_holds_out_each_users_latest_likes() -> None:
    ds = synthetic()
    split = latest_split(ds)
    assert split.protocol == "warm-latest" and split.candidates is None
    assert len(split.train) + len(split.test) == len(ds.positives()) and split.val.empty
    assert (split.test.groupby("user_id").size() == round(0.2 * 12)).all()
    first_test = split.test.groupby("user_id")["timestamp"].min()
    last_train = split.train.groupby("user_id")["timestamp"].max()
    assert (first_test >= last_train.reindex(first_test.index)).all()  # nothing held out is older
    results = evaluate(PopularityRecommender().fit(split.train_dataset(ds)), split)
    assert results.metrics["ndcg@10"] >= 0 and split.info["test_users"] == 60
    untimed = Dataset(ds.spec, ds.items, ds.interactions.assign(timestamp=np.nan), ds.users)
    with pytest.raises(ValueError, match="needs timestamps"):
        latest_split(untimed)


def test_k_shot_needs_a_cold_user_split() -> None:
    with pytest.raises(ValueError, match="cold-user"):
        k_shot(cold_item_split(synthetic()), 1)


def test_cold_user_queries_reveal_the_earliest_items_and_exclude_them() -> None:
    split = cold_user_split(synthetic(), val_fraction=0.1, seed=42)
    for part in ("test", "val"):
        view = k_shot(split, 3, part=part)
        queries = build_queries(split, part=part, k=3)
        assert queries.users == view.users and queries.left_out == view.left_out
        for user, query, exclude, relevant in zip(
            queries.users, queries.queries, queries.exclude, queries.relevant
        ):
            assert query == UserQuery(user_id=user, liked=view.revealed[user])
            assert exclude == set(view.revealed[user]) and len(exclude) == 3
            assert relevant == view.relevant[user] and not relevant & exclude
    assert all(q.liked == () for q in build_queries(split, k=0).queries)


def test_evaluate_on_cold_users_queries_each_k_with_its_revealed_items() -> None:
    ds = synthetic()
    split = cold_user_split(ds, seed=42)
    model = ZeroShotRecommender(HashingEncoder()).fit(split.train_dataset(ds))
    at = {k: evaluate(model, split, k_shot=k) for k in (0, 3)}
    # a cold user reveals nothing at k=0 (no attributes here); three liked items show the topic
    assert at[3].metrics["recall@20"] > 2 * at[0].metrics["recall@20"]
    view = k_shot(split, 3)
    assert at[3].users == view.users
    recs = model.recommend_batch(
        [UserQuery(liked=view.revealed[u]) for u in view.users],
        20,
        exclude=[set(view.revealed[u]) for u in view.users],
    )
    by_hand = recall_at_k([r.ids for r in recs], [view.relevant[u] for u in view.users], 20)
    np.testing.assert_allclose(at[3].per_user["recall@20"], by_hand)


def test_evaluate_needs_k_on_cold_users_only() -> None:
    ds = synthetic()
    split = cold_user_split(ds, seed=42)
    model = PopularityRecommender().fit(split.train_dataset(ds))
    with pytest.raises(ValueError, match="needs k"):
        evaluate(model, split)
    with pytest.raises(ValueError, match="cold-user splits only"):
        evaluate(model, cold_item_split(ds, seed=42), k_shot=1)


def test_hold_out_picks_a_share_of_distinct_ids_whatever_the_row_order() -> None:
    positives = synthetic().positives()
    items = positives["item_id"]
    picked = hold_out(items, 0.2, np.random.default_rng(42))
    assert len(picked) == round(0.2 * items.nunique()) and picked <= set(items)
    shuffled = items.sample(frac=1.0, random_state=3)
    assert hold_out(shuffled, 0.2, np.random.default_rng(42)) == picked
    assert len(hold_out(items.head(2), 0.01, np.random.default_rng(0))) == 1  # at least one
    split = cold_item_split(synthetic(), cold_fraction=0.2, seed=42)
    assert set(split.val["item_id"]) | set(split.test["item_id"]) == picked


def test_reveal_earliest_keeps_users_with_only_repeats_left_and_k_shot_drops_them() -> None:
    rows = [("a", "x", 0.0), ("a", "y", 1.0), ("a", "x", 2.0)]  # a's third item repeats the first
    rows += [("b", "x", 0.0), ("b", "y", 1.0), ("b", "z", 2.0), ("c", "x", 0.0)]
    test = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    history = {"a": ["x", "y", "x"], "b": ["x", "y", "z"], "c": ["x"]}
    shot = reveal_earliest(history, 2)
    assert shot.revealed == {"a": ("x", "y"), "b": ("x", "y")} and shot.left_out == 1
    assert shot.relevant == {"a": set(), "b": {"z"}}
    split = Split("cold-user", "tiny", 0, train=test.head(0), val=test.head(0), test=test)
    view = k_shot(split, 2)
    assert view.revealed == {"b": ("x", "y")} and view.relevant == {"b": {"z"}}
    assert view.left_out == 2
    with pytest.raises(ValueError, match="non-negative"):
        reveal_earliest(history, -1)


def test_queries_ask_in_the_context_of_the_first_event_to_find() -> None:
    """Issue 26: where events carry a context, a known user's query asks in the context of
    their earliest test event, a cold user's at k in that of their k-th (the first not
    revealed); the event's time is its context's time here."""
    ds = synthetic()
    stamped = ds.interactions.assign(context=[{"time": t} for t in ds.interactions["timestamp"]])
    ds = ds.with_interactions(stamped)
    latest = latest_split(ds)
    queries = build_queries(latest)
    first = latest.test.groupby("user_id")["timestamp"].min()
    assert [q.context["time"] for q in queries.queries] == list(first[queries.users])
    cold = cold_user_split(ds, seed=42)
    ordered = cold.test.sort_values(["user_id", "timestamp"]).groupby("user_id")["timestamp"]
    at_three = build_queries(cold, k=3)
    assert [q.context["time"] for q in at_three.queries] == list(ordered.nth(3))
    assert all(not q.context for q in build_queries(latest_split(synthetic())).queries)


def test_a_next_item_query_asks_in_its_targets_context() -> None:
    ds = synthetic()
    stamped = ds.interactions.assign(context=[{"time": t} for t in ds.interactions["timestamp"]])
    split = next_item_split(ds.with_interactions(stamped))
    queries = build_queries(split)
    target_time = split.test.set_index("user_id")["timestamp"]
    assert [q.context["time"] for q in queries.queries] == list(target_time[queries.users])
