"""Deterministic splits for the evaluation protocols in DESIGN.md.

A split is a set of interaction tables plus the candidate items and the users to evaluate; it
saves to a directory (Parquet + JSON) so it can be inspected and reused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.data.frames import pd
from coldbrew.data.schema import (
    ITEM_ID,
    TIMESTAMP,
    USER_ID,
    Dataset,
    has_timestamps,
    history_by_user,
)

PARTS = ("train", "val", "test")


@dataclass
class Split:
    """One protocol's split of a dataset's positive interactions.

    ``train`` is what models may learn from; ``val`` is for tuning and early stopping; ``test`` is
    only for the final figures. ``candidates`` limits ranking (``None``: the whole catalogue).
    """

    protocol: str
    dataset: str
    seed: int
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    candidates: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def train_dataset(self, dataset: Dataset) -> Dataset:
        """The catalogue and users of ``dataset`` with only the training interactions."""
        return dataset.with_interactions(self.train)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for part in PARTS:
            getattr(self, part).to_parquet(directory / f"{part}.parquet", index=False)
        meta = {
            "protocol": self.protocol,
            "dataset": self.dataset,
            "seed": self.seed,
            "candidates": self.candidates,
            "info": self.info,
        }
        (directory / "split.json").write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Split:
        directory = Path(directory)
        meta = json.loads((directory / "split.json").read_text())
        parts = {p: pd.read_parquet(directory / f"{p}.parquet") for p in PARTS}
        return cls(
            meta["protocol"],
            meta["dataset"],
            meta["seed"],
            candidates=meta["candidates"],
            info=meta["info"],
            **parts,
        )


def _shuffled_parts(
    frame: pd.DataFrame, fractions: tuple[float, ...], rng: np.random.Generator
) -> list[pd.DataFrame]:
    """Split rows at random into consecutive parts of the given fractions."""
    order = rng.permutation(len(frame))
    bounds = np.floor(np.cumsum(fractions)[:-1] * len(frame)).astype(int)
    return [frame.iloc[np.sort(idx)].reset_index(drop=True) for idx in np.split(order, bounds)]


def hold_out(ids: pd.Series, fraction: float, rng: np.random.Generator) -> set[Any]:
    """A random ``fraction`` (at least one) of the distinct values of ``ids``: cold items or users.

    Drawn without replacement from the sorted distinct ids, so a seed picks the same ones whatever
    the order of the rows. Used by :func:`cold_item_split` and the hybrid's inner validation.
    """
    distinct = np.sort(ids.unique())
    size = max(1, round(fraction * len(distinct)))
    return set(rng.choice(distinct, size=size, replace=False).tolist())


def cold_item_split(dataset: Dataset, *, cold_fraction: float = 0.2, seed: int = 42) -> Split:
    """The ColdRec/ALDI cold-item split.

    ``cold_fraction`` of the items with positive interactions become cold; warm interactions are
    split 80/10/10 into train/val/test, cold items' interactions 50/50 into val/test. Test ranks
    only the cold items that appear in the cold test part (``candidates``); its ``test`` holds
    only cold-item interactions, and ``info["warm_test"]`` counts the warm test rows kept apart.
    """
    if not 0 < cold_fraction < 1:
        raise ValueError(f"cold_fraction must be in (0, 1), got {cold_fraction}")
    positives = dataset.positives().reset_index(drop=True)
    rng = np.random.default_rng(seed)
    cold = hold_out(positives[ITEM_ID], cold_fraction, rng)
    is_cold = positives[ITEM_ID].isin(cold)
    warm_train, warm_val, warm_test = _shuffled_parts(positives[~is_cold], (0.8, 0.1, 0.1), rng)
    cold_val, cold_test = _shuffled_parts(positives[is_cold], (0.5, 0.5), rng)
    candidates = sorted(set(cold_test[ITEM_ID]))
    info = {
        "cold_items": len(cold),
        "cold_test_items": len(candidates),
        "warm_val": len(warm_val),
        "warm_test": len(warm_test),
        "test_users": int(cold_test[USER_ID].nunique()),
        "cold_val_items": sorted(set(cold_val[ITEM_ID])),
    }
    return Split(
        "cold-item",
        dataset.name,
        seed,
        train=warm_train,
        val=cold_val,
        test=cold_test,
        candidates=candidates,
        info=info,
    )


K_VALUES = (0, 1, 3, 5, 10, 20)


def cold_user_split(
    dataset: Dataset,
    *,
    k_values: tuple[int, ...] = K_VALUES,
    cold_fraction: float = 0.2,
    val_fraction: float = 0.0,
    seed: int = 42,
) -> Split:
    """The cold-user k-shot split.

    ``cold_fraction`` of the users with positive interactions become cold test users (and
    ``val_fraction`` more become cold validation users); every positive interaction of the other
    users is training data. ``test`` (and ``val``) hold the cold users' whole positive histories,
    oldest first; :func:`k_shot` reveals the ``k`` earliest of each and keeps the rest as the
    relevant items. Ranking is over every item (``candidates`` is ``None``) minus the revealed.
    """
    if not 0 < cold_fraction < 1 or not 0 <= val_fraction < 1 - cold_fraction:
        raise ValueError(
            f"need 0 < cold_fraction < 1 and 0 <= val_fraction < 1 - cold_fraction, "
            f"got {cold_fraction} and {val_fraction}"
        )
    if any(k < 0 for k in k_values):
        raise ValueError(f"k_values must be non-negative, got {k_values}")
    positives = dataset.positives().reset_index(drop=True)
    rng = np.random.default_rng(seed)
    users = rng.permutation(np.sort(positives[USER_ID].astype(str).unique()))
    n_test = max(1, round(cold_fraction * len(users)))
    n_val = round(val_fraction * len(users))
    test_users = set(users[:n_test].tolist())
    val_users = set(users[n_test : n_test + n_val].tolist())
    user_col = positives[USER_ID].astype(str)
    test = _oldest_first(positives[user_col.isin(test_users)])
    val = _oldest_first(positives[user_col.isin(val_users)])
    train = positives[~user_col.isin(test_users | val_users)].reset_index(drop=True)
    sizes = test.groupby(USER_ID).size()
    info: dict[str, Any] = {
        "k_values": list(k_values),
        "cold_users": len(test_users),
        "val_users": len(val_users),
        "users_per_k": {str(k): int((sizes >= k + 1).sum()) for k in k_values},
        "left_out_per_k": {str(k): int((sizes < k + 1).sum()) for k in k_values},
        "has_timestamps": bool(positives[TIMESTAMP].notna().any())
        if TIMESTAMP in positives
        else False,
    }
    return Split("cold-user", dataset.name, seed, train=train, val=val, test=test, info=info)


def _oldest_first(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows grouped by user (sorted), each user's oldest first (file order breaks ties)."""
    order = np.arange(len(frame))
    ts = frame[TIMESTAMP].fillna(-np.inf).to_numpy() if TIMESTAMP in frame else np.zeros(len(frame))
    keyed = frame.assign(_u=frame[USER_ID].astype(str), _ts=ts, _o=order)
    keyed = keyed.sort_values(["_u", "_ts", "_o"], kind="stable")
    return keyed.drop(columns=["_u", "_ts", "_o"]).reset_index(drop=True)


@dataclass
class KShot:
    """One ``k`` of the cold-user protocol: what each user reveals and what is left to find."""

    k: int
    revealed: dict[str, tuple[str, ...]]
    relevant: dict[str, set[str]]
    left_out: int

    @property
    def users(self) -> list[str]:
        return sorted(self.relevant)


def reveal_earliest(history: Mapping[str, Sequence[str]], k: int) -> KShot:
    """Each user with more than ``k`` items reveals the ``k`` earliest; the rest are relevant.

    ``history`` holds each user's items oldest first (:func:`history_by_user`). Users with at most
    ``k`` items are left out (counted in ``left_out``). A user whose later items all repeat revealed
    ones is kept with nothing relevant: :func:`k_shot` leaves them out, the hybrid's inner
    validation keeps them (they add no signal there). Users keep ``history``'s order.
    """
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")
    revealed, relevant, left_out = {}, {}, 0
    for user, items in history.items():
        if len(items) < k + 1:
            left_out += 1
            continue
        shown = tuple(items[:k])
        revealed[user], relevant[user] = shown, set(items[k:]) - set(shown)
    return KShot(k, revealed, relevant, left_out)


def k_shot(split: Split, k: int, *, part: str = "test") -> KShot:
    """Reveal each cold user's ``k`` earliest positives; the rest are relevant.

    Users with fewer than ``k + 1`` positives, or with nothing left but repeats of what they
    revealed, are left out (counted in ``left_out``).
    """
    if split.protocol != "cold-user":
        raise ValueError(f"k_shot needs a cold-user split, got {split.protocol!r}")
    shot = reveal_earliest(history_by_user(getattr(split, part)), k)
    kept = [u for u, rest in shot.relevant.items() if rest]
    return KShot(
        k,
        {u: shot.revealed[u] for u in kept},
        {u: shot.relevant[u] for u in kept},
        shot.left_out + len(shot.relevant) - len(kept),
    )


def warm_split(
    dataset: Dataset, *, test_fraction: float = 0.2, val_fraction: float = 0.0, seed: int = 42
) -> Split:
    """Per-user random split of positives: ``test_fraction`` to test, ``val_fraction`` to val.

    Each user keeps at least one training interaction; a user with one positive has no test
    items. Ranking is over every item minus the user's training (and validation) items.
    """
    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1 - test_fraction:
        raise ValueError(
            f"need 0 < test_fraction < 1 and 0 <= val_fraction < 1 - test_fraction, "
            f"got {test_fraction} and {val_fraction}"
        )
    positives = dataset.positives().reset_index(drop=True)
    rng = np.random.default_rng(seed)
    groups = positives.groupby(positives[USER_ID].astype(str), sort=True).indices
    part = np.zeros(len(positives), dtype=np.int8)  # 0 train, 1 val, 2 test
    for user in sorted(groups):
        rows = np.asarray(groups[user])
        rows = rows[rng.permutation(len(rows))]
        n_test = min(round(test_fraction * len(rows)), len(rows) - 1)
        n_val = min(round(val_fraction * len(rows)), len(rows) - 1 - n_test)
        part[rows[:n_test]] = 2
        part[rows[n_test : n_test + n_val]] = 1
    frames = [positives[part == p].reset_index(drop=True) for p in (0, 1, 2)]
    info = {
        "test_users": int(frames[2][USER_ID].nunique()),
        "test_fraction": test_fraction,
        "val_fraction": val_fraction,
    }
    train, val, test = frames
    return Split("warm", dataset.name, seed, train=train, val=val, test=test, info=info)


def steps_from_latest(frame: pd.DataFrame) -> np.ndarray:
    """Per row of ``frame``: how many of its user's rows come later (by timestamp, file order
    breaking ties); 0 for each user's latest."""
    codes, _ = pd.factorize(frame[USER_ID].astype(str))
    n = len(frame)
    times = (
        frame[TIMESTAMP].fillna(-np.inf).to_numpy(dtype=np.float64)
        if TIMESTAMP in frame
        else np.zeros(n)
    )
    counts = np.bincount(codes, minlength=codes.max() + 1 if n else 0)
    order = np.lexsort((np.arange(n), times, codes))  # by user, then time, then file
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
    later: np.ndarray = counts[codes] - 1 - position
    return later


def _timed_positives(dataset: Dataset, protocol: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The positives grouped by user, oldest first, and per row its user's number of positives;
    raises when there are no timestamps to order them by."""
    positives = _oldest_first(dataset.positives())
    if not has_timestamps(positives):
        raise ValueError(
            f"the {protocol} protocol needs timestamps; {dataset.name!r} has none "
            "(use the warm protocol)"
        )
    lengths = positives.groupby(USER_ID, sort=False)[USER_ID].transform("size").to_numpy()
    return positives, lengths


def latest_split(dataset: Dataset, *, test_fraction: float = 0.2, seed: int = 42) -> Split:
    """Per-user time split of positives: each user's latest ``test_fraction`` (by timestamp,
    file order breaking ties) to test, the rest to training (at least one).

    The warm protocol's random split asks a model to find interactions scattered through a
    user's past; a served model meets what users like *next*. Needs timestamps: without them
    there is no "latest" to hold out. ``seed`` is recorded only (nothing is drawn).
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"need 0 < test_fraction < 1, got {test_fraction}")
    positives, lengths = _timed_positives(dataset, "warm-latest")
    n_test = np.minimum(np.round(test_fraction * lengths).astype(int), lengths - 1)
    is_test = steps_from_latest(positives) < n_test
    train = positives[~is_test].reset_index(drop=True)
    test = positives[is_test].reset_index(drop=True)
    info = {"test_users": int(test[USER_ID].nunique()), "test_fraction": test_fraction}
    return Split(
        "warm-latest", dataset.name, seed, train=train, val=test.iloc[:0], test=test, info=info
    )


NEXT_ITEM_MIN = 3
"""Users with fewer positives than this have no next-item target (they need one to train on)."""


def next_item_split(
    dataset: Dataset, *, min_interactions: int = NEXT_ITEM_MIN, seed: int = 42
) -> Split:
    """Leave-one-out by time, as RecBole, UniSRec and VQ-Rec evaluate sequential recommenders.

    Each user with at least ``min_interactions`` positives, sorted by timestamp (file order
    breaking ties), gives their latest to ``test`` and their second-latest to ``val``; everything
    else is training, including every positive of the users with fewer (they are not
    evaluated; ``info["train_only_users"]`` counts them). At query time a user reveals their
    whole earlier history, for the test target the validation one too (:func:`next_item_view`);
    ranking is over the whole catalogue minus that history. Needs timestamps. ``seed`` is
    recorded only (nothing is drawn).
    """
    if min_interactions < NEXT_ITEM_MIN:
        raise ValueError(f"min_interactions must be at least 3, got {min_interactions}")
    positives, lengths = _timed_positives(dataset, "next-item")
    later = steps_from_latest(positives)
    held = lengths >= min_interactions
    is_test, is_val = held & (later == 0), held & (later == 1)
    users = positives[USER_ID].astype(str)
    info = {
        "test_users": int(is_test.sum()),
        "min_interactions": min_interactions,
        "train_only_users": int(users[~held].nunique()),
    }
    return Split(
        "next-item",
        dataset.name,
        seed,
        train=positives[~(is_test | is_val)].reset_index(drop=True),
        val=positives[is_val].reset_index(drop=True),
        test=positives[is_test].reset_index(drop=True),
        info=info,
    )


@dataclass
class NextItemView:
    """The next-item queries of one part: what each user reveals and the one item to find."""

    revealed: dict[str, tuple[str, ...]]
    target: dict[str, str]
    left_out: int

    @property
    def users(self) -> list[str]:
        return sorted(self.target)


def next_item_view(split: Split, *, part: str = "test") -> NextItemView:
    """What each next-item user reveals (their whole history before the ``part`` target, oldest
    first: the training part, plus the validation target for ``test``) and the target to find.

    A user whose target repeats an item they revealed is left out (counted in ``left_out``): the
    history is masked, so it could not be found. There are none where positives are one per user
    and item.
    """
    if split.protocol != "next-item":
        raise ValueError(f"next_item_view needs a next-item split, got {split.protocol!r}")
    if part not in ("val", "test"):
        raise ValueError(f"part must be val or test, got {part!r}")
    earlier = [split.train] if part == "val" else [split.train, split.val]
    history = history_by_user(pd.concat(earlier, ignore_index=True))
    targets = getattr(split, part)
    revealed, target = {}, {}
    for user, item in zip(targets[USER_ID].astype(str), targets[ITEM_ID].astype(str)):
        shown = tuple(history.get(user, ()))
        if item not in shown:
            revealed[user], target[user] = shown, item
    return NextItemView(revealed, target, len(targets) - len(target))
