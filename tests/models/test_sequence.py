"""What people like next: the transitions part and the time-ordered inner validation."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chains import chains as chain_data
from coldbrew.data.schema import Dataset, DatasetSpec
from coldbrew.models import Recommender, UserQuery
from coldbrew.models.baselines import PopularityRecommender
from coldbrew.models.cf import ItemKNNRecommender
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.innerval import inner_validation, latest_for_half
from coldbrew.models.sequence import LinearTransitionRecommender, TransitionRecommender
from coldbrew.models.weights import KNOWN, REVEALING

N_ITEMS = 12


def chains(with_time: bool = True) -> Dataset:
    """Users who like runs of 4 along the chain i0 → i1 → … (:func:`chains.chains`)."""
    return chain_data(N_ITEMS, 40, 4, with_time)


def test_what_came_next_ranks_first_and_what_came_before_does_not() -> None:
    model = TransitionRecommender(window=2).fit(chains())
    recs = model.recommend(UserQuery(liked=("i5",)), k=3).ids
    assert recs[:2] == ["i6", "i7"], recs  # one step after, then two
    assert "i4" not in recs
    # ItemKNN, which ignores order, cannot tell the run's next item from its previous one
    knn = ItemKNNRecommender(neighbors=10).fit(chains()).score([UserQuery(liked=("i5",))])[0]
    rows = knn[[int(i[1:]) for i in ("i4", "i6")]]
    assert rows[0] == pytest.approx(rows[1])


def test_the_latest_like_counts_most() -> None:
    model = TransitionRecommender(window=2).fit(chains())
    assert model.recommend(UserQuery(liked=("i8", "i2")), k=1).ids == ["i3"]
    # a new like moves the answer at once, no refit
    assert model.recommend(UserQuery(liked=("i8", "i2", "i5")), k=1).ids == ["i6"]


def test_the_window_limits_how_far_back_a_user_is_read() -> None:
    model = TransitionRecommender(window=1).fit(chains())
    scores = model.score([UserQuery(liked=("i2", "i8"))])[0]
    assert scores[3] == 0.0 and scores[9] > 0  # only i8, the latest, is read


def test_without_timestamps_there_is_no_order_to_learn() -> None:
    model = TransitionRecommender(window=2).fit(chains(with_time=False))
    assert model.transitions.nnz == 0
    scores = model.score([UserQuery(liked=("i5",)), UserQuery(), UserQuery(user_id="u1")])
    assert not scores.any()  # flat for everyone: a blend gives it no say
    assert len(model.propose(UserQuery(liked=("i5",)), 5)) == 0  # nor any candidates
    ordered = TransitionRecommender(window=2).fit(chains())
    assert {"i6", "i7"} <= set(ordered.item_ids.ids(ordered.propose(UserQuery(liked=("i5",)), 5)))


def test_save_load_and_new_items(tmp_path: Path) -> None:
    model = TransitionRecommender(window=3).fit(chains())
    query = UserQuery(user_id="u3")
    before = model.score([query])
    loaded = Recommender.load(model.save(tmp_path / "m"))
    assert isinstance(loaded, TransitionRecommender)
    np.testing.assert_array_equal(loaded.score([query]), before)
    loaded.add_items(pd.DataFrame({"item_id": ["new"], "title": ["y"]}))
    scores = loaded.score([query])[0]
    assert scores.shape == (N_ITEMS + 1,)
    assert scores[-1] < scores[:-1].min()  # no one has liked it: below every known item


def runs(*patterns: tuple[str, int]) -> Dataset:
    """One user a run: each pattern (items joined by spaces, oldest first) liked by as many
    users as its count says, in time order."""
    rows, user = [], 0
    for pattern, count in patterns:
        for _ in range(count):
            rows += [(f"u{user}", item, 5.0, float(t)) for t, item in enumerate(pattern.split())]
            user += 1
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"])
    items = pd.DataFrame({"item_id": sorted(set(frame["item_id"])), "title": "x"})
    spec = DatasetSpec(name="runs", item_text=("title",), positive_threshold=4.0)
    return Dataset(spec, items, frame, pd.DataFrame({"user_id": []}))


def test_linear_transitions_solve_the_ridge_regression_of_each_like_on_the_ones_before() -> None:
    """``B = (SᵀS + l2·I)⁻¹ SᵀT`` over every like after a user's first, its source the
    ``window`` likes before it weighted ``1/d``, written out here the slow way; kept times
    ``l2``, and tending to the counts as ``l2`` grows."""
    data = chains()
    model = LinearTransitionRecommender(window=3, l2=2.0, keep=N_ITEMS).fit(data)
    order = data.interactions.sort_values(["user_id", "timestamp"])
    rows, targets = [], []
    for _, run in order.groupby("user_id"):
        liked = [model.item_ids.row(i) for i in run["item_id"]]
        for t in range(1, len(liked)):
            source = np.zeros(N_ITEMS)
            for d in range(1, min(3, t) + 1):
                source[liked[t - d]] += 1.0 / d
            rows.append(source)
            targets.append(np.eye(N_ITEMS)[liked[t]])
    s, t = np.array(rows), np.array(targets)
    expected = 2.0 * np.linalg.solve(s.T @ s + 2.0 * np.eye(N_ITEMS), s.T @ t)  # times l2
    np.fill_diagonal(expected, 0.0)
    assert model.learned_as == "ridge"
    np.testing.assert_allclose(model.transitions.toarray(), expected, atol=1e-5)
    # each row keeps its largest entries by magnitude, negative ones included
    few = LinearTransitionRecommender(window=3, l2=2.0, keep=2).fit(data).transitions
    assert (np.diff(few.indptr) <= 2).all() and (np.diff(few.indptr) == 2).any()
    for row in range(N_ITEMS):
        kept = np.sort(np.abs(few[row].toarray().ravel()))[-2:]
        np.testing.assert_allclose(kept, np.sort(np.abs(expected[row]))[-2:], atol=1e-5)
    counts = TransitionRecommender(window=3).fit(data).transitions.toarray()
    huge = LinearTransitionRecommender(window=3, l2=1e7, keep=N_ITEMS).fit(data)
    np.testing.assert_allclose(huge.transitions.toarray(), counts, rtol=1e-3, atol=1e-3)


def test_linear_transitions_learn_what_the_item_before_the_latest_says() -> None:
    """After ``a h`` came ``x``, after ``b h`` came ``y``, a third more often. The counts
    score ``y`` first for a user who liked ``a`` then ``h`` (most of what followed ``h`` was
    ``y``); the regression learns that ``a`` before ``h`` means ``x``, and cites a liked item
    as its reason."""
    data = runs(("a h x", 30), ("b h y", 40))
    query = UserQuery(liked=("a", "h"))
    counts = TransitionRecommender(window=2).fit(data)
    linear = LinearTransitionRecommender(window=2, l2=1.0).fit(data)
    assert counts.recommend(query, k=1).ids == ["y"]
    assert linear.recommend(query, k=1).ids == ["x"]
    assert linear.recommend(UserQuery(liked=("b", "h")), k=1).ids == ["y"]
    (reason,) = linear.explain(query, ["x"])
    assert reason.kind == "went_on" and reason.item_id in {"a", "h"} and 0 < reason.value <= 1


def test_linear_transitions_count_above_their_catalogue_limit_and_say_so(tmp_path: Path) -> None:
    """Too many items to solve: the model is the counts with their own default window, the
    same matrix and scores, whatever its own ``window`` says."""
    data = chain_data(N_ITEMS, 40, 8, True)  # runs of 8: more than five steps to count
    counted = LinearTransitionRecommender(window=7, max_items=N_ITEMS - 1).fit(data)
    assert counted.learned_as == "counts" and counted.reads == 5
    fresh = TransitionRecommender().fit(data)
    assert (counted.transitions != fresh.transitions).nnz == 0
    queries = [UserQuery(user_id="u3"), UserQuery(liked=tuple(f"i{n}" for n in range(8)))]
    np.testing.assert_array_equal(counted.score(queries), fresh.score(queries))
    loaded = Recommender.load(counted.save(tmp_path / "counted"))
    assert isinstance(loaded, LinearTransitionRecommender) and loaded.learned_as == "counts"
    np.testing.assert_array_equal(loaded.score(queries), fresh.score(queries))
    data = chains()
    ridge = LinearTransitionRecommender(window=3).fit(data)
    query = UserQuery(user_id="u3")
    again = Recommender.load(ridge.save(tmp_path / "ridge"))
    assert isinstance(again, LinearTransitionRecommender) and again.learned_as == "ridge"
    np.testing.assert_array_equal(again.score([query]), ridge.score([query]))


def test_a_refit_keeps_only_a_matrix_learned_the_same_way() -> None:
    """A counted part does not take a regression's matrix for its counts, nor the other way
    round, nor a regression with another ``l2``; the same settings on the same histories do."""
    data = chains()
    linear = LinearTransitionRecommender(window=2, l2=5.0).fit(data)
    for started, kept in (
        (TransitionRecommender(window=2), False),
        (LinearTransitionRecommender(window=2, l2=1.0), False),
        (LinearTransitionRecommender(window=2, l2=5.0), True),
    ):
        started.start_from(linear)
        started.fit(data)
        assert (started.transitions is linear.transitions) is kept
    counted = TransitionRecommender(window=2).fit(data)
    started = LinearTransitionRecommender(window=2, l2=5.0)
    started.start_from(counted)
    assert (started.fit(data).transitions != linear.transitions).nnz == 0


def test_latest_for_half_moves_a_users_share_to_their_latest() -> None:
    data = chains()
    warm = data.positives().reset_index(drop=True)
    rng = np.random.default_rng(0)
    held = rng.random(len(warm)) < 0.3
    moved, half = latest_for_half(warm, held, np.random.default_rng(1))
    per_user = warm.assign(held=held, moved=moved, half=half).groupby("user_id")
    changed = 0
    for _, g in per_user:
        assert g["held"].sum() == g["moved"].sum()  # as many as the draw gave them
        assert g["half"].all() or not g["half"].any()  # the half is a set of users
        if not (g["held"] == g["moved"]).all():
            assert g["half"].all()
            changed += 1
            latest = g.sort_values("timestamp")["moved"].to_numpy()
            n = int(latest.sum())
            assert latest[len(latest) - n :].all() and not latest[: len(latest) - n].any()
    assert changed > 5


def test_inner_validation_holds_out_latest_likes_only_when_there_is_time() -> None:
    def held_positions(data: Dataset) -> list[int]:
        train, _ = inner_validation(data, seed=3, fraction=0.3)
        kept = set(map(tuple, train.interactions[["user_id", "item_id"]].to_numpy()))
        pos = []
        for user, item in data.positives()[["user_id", "item_id"]].to_numpy():
            if (user, item) not in kept:
                pos.append(int(item[1:]) - int(user[1:]) % (N_ITEMS - 4))
        return pos

    timed, untimed = held_positions(chains()), held_positions(chains(with_time=False))
    # with timestamps, more of what is held out sits at the end of the users' runs
    assert np.mean(timed) > np.mean(untimed)


def test_next_item_validation_asks_for_the_latest_with_the_rest_revealed() -> None:
    """With ``next_item``, the time-ordered half of the returning users are also asked as the
    next-item protocol asks: find their latest like (by time, file order breaking ties) with
    every earlier one revealed, oldest first."""
    data = chains()
    frame = data.interactions.assign(timestamp=data.interactions["timestamp"] // 2)  # ties
    data = Dataset(data.spec, data.items, frame, data.users)
    inner, tasks = inner_validation(data, seed=3, fraction=0.3, next_item=True)
    trained = inner.interactions.groupby("user_id")["item_id"].apply(set).to_dict()
    held_items = {i for t in tasks if t.candidates for i in t.candidates}  # their own task
    order: dict[str, list[str]] = {}
    for _, _, user, item in sorted(
        (t, n, u, i)
        for n, (u, i, t) in enumerate(frame[["user_id", "item_id", "timestamp"]].values)
    ):
        if item not in held_items:
            order.setdefault(user, []).append(item)
    asked = [
        (q, ex, rel)
        for task in tasks
        for q, ex, rel in zip(task.queries, task.exclude, task.relevant, strict=True)
        if q.user_id in trained and q.liked
    ]
    assert len(asked) >= 2
    for query, exclude, relevant in asked:
        history = order[str(query.user_id)]
        assert relevant == {history[-1]}  # exactly the latest
        assert query.liked == tuple(history[:-1]) and exclude == set(history[:-1])
        assert trained[query.user_id] <= exclude and history[-1] not in trained[query.user_id]
        # held-out likes before the latest are revealed, not asked for: each query reveals
        # likes beyond the training history, as the protocol's do (a run of one is not asked)
        assert len(query.liked) > len(trained[query.user_id])
    # ...and are asked too for the whole run of latest likes from their training history alone,
    # as are the other returning users for a random draw
    from_history = {q.user_id for t in tasks for q in t.queries if q.user_id in trained}
    assert {q.user_id for q, _, _ in asked} <= {
        q.user_id for t in tasks for q in t.queries if not q.liked
    }
    assert len(from_history) > len(asked)
    # by default (the default hybrid's) the same training rows, and no one is asked again
    default_inner, default_tasks = inner_validation(data, seed=3, fraction=0.3)
    pd.testing.assert_frame_equal(default_inner.interactions, inner.interactions)
    assert len(default_tasks) == len(tasks) - 1
    assert not any(q.user_id in trained and q.liked for t in default_tasks for q in t.queries)


def test_next_item_validation_asks_as_many_latest_likes_as_counted() -> None:
    """``next_item=3`` asks each time-ordered returning user for their latest three held-out
    likes (of runs of two or more), each with everything before it revealed: the latest's query
    is the one ``next_item=True`` asks, and the training rows are the same."""
    data = chain_data(30, 60, 12, True)  # runs of 12: several held-out likes a user
    one_inner, one = inner_validation(data, seed=3, fraction=0.3, next_item=True)
    three_inner, three = inner_validation(data, seed=3, fraction=0.3, next_item=3)
    pd.testing.assert_frame_equal(one_inner.interactions, three_inner.interactions)
    asked_once, asked_thrice = one[-1], three[-1]
    assert len(asked_once.queries) < len(asked_thrice.queries) <= 3 * len(asked_once.queries)
    by_user: dict[str, list[tuple[tuple[str, ...], set[str]]]] = {}
    for q, ex, rel in zip(
        asked_thrice.queries, asked_thrice.exclude, asked_thrice.relevant, strict=True
    ):
        assert ex == set(q.liked) and not rel & ex
        by_user.setdefault(str(q.user_id), []).append((q.liked, rel))
    trained = three_inner.interactions.groupby("user_id")["item_id"].apply(set).to_dict()
    for q, rel in zip(asked_once.queries, asked_once.relevant, strict=True):
        steps = sorted(by_user[str(q.user_id)], key=lambda s: len(s[0]))
        assert steps[-1] == (q.liked, rel)  # the latest, as asked once
        assert 1 <= len(steps) <= 3
        for (liked, target), (later, _) in pairwise(steps):
            assert later == (*liked, *target)  # each step reveals the one before it
        # every query reveals likes beyond the training history
        assert len(steps[0][0]) > len(trained[q.user_id])


def test_a_part_with_nothing_to_say_changes_no_weight() -> None:
    """Without timestamps the transitions part is silent: the hybrid's weight search is the one
    the other parts alone get, to the bit, and gives it nothing."""

    def hybrid(with_part: bool) -> HybridRecommender:
        parts: dict[str, Recommender] = {
            "knn": ItemKNNRecommender(neighbors=5),
            "popularity": PopularityRecommender(tie_break=False),
        }
        if with_part:
            parts["transitions"] = TransitionRecommender(window=2)
        model = HybridRecommender(parts, grid_step=0.25, min_queries=1, val_fraction=0.3)
        model.fit(chains(with_time=False))
        return model

    with_part, without = hybrid(True), hybrid(False)
    np.testing.assert_array_equal(with_part.weights[..., :2], without.weights)
    assert not with_part.weights[..., 2].any()
    query = [UserQuery(liked=("i4", "i5"))]
    np.testing.assert_array_equal(with_part.score(query), without.score(query))


def test_a_hybrid_of_silent_parts_still_fits_and_answers() -> None:
    parts: dict[str, Recommender] = {"transitions": TransitionRecommender(window=2)}
    model = HybridRecommender(parts, grid_step=0.5, min_queries=1, val_fraction=0.3)
    model.fit(chains(with_time=False))
    assert len(model.recommend(UserQuery(liked=("i4",)), k=3)) == 3


def long_chains(with_time: bool = True) -> Dataset:
    """200 users who each like eight steps of the chain i0 → i1 → … → i29 in order, from
    starts spread along it: what comes next is the item after the latest, nothing else."""
    frame = pd.DataFrame(
        [
            (f"u{u}", f"i{u % 22 + step}", 5.0, 100.0 * u + step if with_time else np.nan)
            for u in range(200)
            for step in range(8)
        ],
        columns=["user_id", "item_id", "value", "timestamp"],
    )
    items = pd.DataFrame({"item_id": [f"i{n}" for n in range(30)], "title": "x"})
    spec = DatasetSpec(name="long-chains", item_text=("title",), positive_threshold=4.0)
    return Dataset(spec, items, frame, pd.DataFrame({"user_id": []}))


def _sequence_hybrid(data: Dataset) -> HybridRecommender:
    parts: dict[str, Recommender] = {
        "knn": ItemKNNRecommender(neighbors=10),
        "popularity": PopularityRecommender(tie_break=False),
        "transitions": TransitionRecommender(window=2),
    }
    return HybridRecommender(parts, grid_step=0.5, min_queries=5, val_fraction=0.3).fit(data)


def test_a_pure_sequence_makes_the_selection_keep_transitions_for_next_items() -> None:
    """On a pure sequential pattern the default's next-item queries choose ``transitions``
    alone for returning users who reveal likes, in every bucket; ItemKNN, which cannot tell
    the next step from the previous one, gets no weight there."""
    model = _sequence_hybrid(long_chains())
    searched = [k for k, v in model.validation.items() if "/revealing/" in k and v["queries"]]
    assert searched  # the selection was made on next-item queries
    assert all(model.validation[k]["best_part"] == "transitions" for k in searched)
    np.testing.assert_array_equal(model.weights[:, 1, REVEALING], [[0.0, 0.0, 1.0]] * 8)
    user = "u3"  # liked i3 … i10: asked with the next step revealed, i12 comes first
    query = UserQuery(user_id=user, liked=tuple(f"i{3 + s}" for s in range(9)))
    assert model.recommend(query, k=1).ids == ["i12"]


def test_without_timestamps_no_next_item_queries_are_asked() -> None:
    """No order, no next-item queries: returning users who reveal likes share the weights of
    those who do not, and no search is made for them."""
    model = _sequence_hybrid(long_chains(with_time=False))
    assert not any("/revealing/" in k for k in model.validation)
    np.testing.assert_array_equal(model.weights[:, :, REVEALING], model.weights[:, :, KNOWN])


def test_each_returning_users_query_carries_its_shape() -> None:
    """The warm task's queries say whether they hold out the user's latest likes (a random half
    of the users, when there is time) or random ones; without timestamps none is latest."""
    data = chains()
    inner, tasks = inner_validation(data, seed=3, fraction=0.3, next_item=True)
    trained = inner.interactions.groupby("user_id")["item_id"].apply(set).to_dict()
    (warm,) = [t for t in tasks if t.latest is not None]
    assert all(q.user_id in trained and not q.liked for q in warm.queries)
    flags = dict(zip((q.user_id for q in warm.queries), warm.latest or [], strict=True))
    assert 0 < sum(flags.values()) < len(flags)  # both shapes
    # the users asked again for their very latest like are the latest-shaped ones
    asked_again = {q.user_id for t in tasks for q in t.queries if q.user_id in trained and q.liked}
    assert asked_again and all(flags[u] for u in asked_again)
    # a latest-shaped query's relevant items come after every trained like of its user
    frame = data.interactions.assign(user_id=data.interactions["user_id"].astype(str))
    when = {(u, i): t for u, i, t in frame[["user_id", "item_id", "timestamp"]].to_numpy()}
    for query, relevant, latest in zip(warm.queries, warm.relevant, warm.latest or [], strict=True):
        if latest:
            user = str(query.user_id)
            last_trained = max(when[user, i] for i in trained[user])
            assert min(when[user, i] for i in relevant) >= last_trained
    _, untimed = inner_validation(chains(with_time=False), seed=3, fraction=0.3)
    assert not any(flag for t in untimed for flag in t.latest or [])
