"""Fitting :class:`~coldbrew.models.sasrecnet.SASRecNet` with early stopping on an inner
validation: each user with at least :data:`VALIDATION_MIN` likes holds out the latest, the
network trains on the rest, and the epoch that ranks most held-out items in its top
:data:`VALIDATION_K` (the user's earlier likes masked, as the next-item protocol masks them)
is the one kept."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from coldbrew.models.sasrecnet import (
    NetShape,
    SASRecNet,
    TrainSettings,
    item_vectors,
    last_states,
    left_padded,
    train_epoch,
    training_windows,
)

VALIDATION_MIN = 3
"""Users with fewer likes than this keep them all for training (as the protocol's own split)."""
VALIDATION_K = 10
"""The inner validation's cut-off: Recall@10, the next-item protocol's headline figure."""


@dataclass
class Fitted:
    """The trained network and its inner validation Recall@10 after each epoch."""

    net: SASRecNet
    validation: list[float]


@dataclass(frozen=True)
class Held:
    """The inner validation: each held-out user's earlier likes and the latest one to find."""

    histories: list[np.ndarray]
    targets: np.ndarray

    @classmethod
    def split(cls, sequences: Sequence[np.ndarray]) -> tuple[list[np.ndarray], Held]:
        """The training sequences (held-out targets removed) and the held-out queries."""
        train, histories, targets = [], [], []
        for seq in sequences:
            if len(seq) >= VALIDATION_MIN:
                histories.append(seq[:-1])
                targets.append(int(seq[-1]))
            train.append(seq[:-1] if len(seq) >= VALIDATION_MIN else seq)
        return train, cls(histories, np.asarray(targets, dtype=np.int64))

    def recall(self, net: SASRecNet, trained: np.ndarray, length: int) -> float:
        """The share of targets in the top :data:`VALIDATION_K` among the ``trained`` items."""
        states = last_states(net, left_padded(self.histories, length))
        scores = states @ item_vectors(net).T
        scores[:, ~trained] = -np.inf
        for q, history in enumerate(self.histories):
            scores[q, history] = -np.inf
        top = np.argpartition(-scores, VALIDATION_K - 1, axis=1)[:, :VALIDATION_K]
        return float((top == self.targets[:, None]).any(axis=1).mean())


def fit_network(
    shape: NetShape, sequences: Sequence[np.ndarray], settings: TrainSettings
) -> Fitted | None:
    """Train a network on each user's item rows (oldest first); ``None`` when no user has two.
    One torch thread: on two shared cores it stepped about twice as fast as two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(shape, sequences, settings)
    finally:
        torch.set_num_threads(threads)


def _fit(
    shape: NetShape, sequences: Sequence[np.ndarray], settings: TrainSettings
) -> Fitted | None:
    train, held = Held.split(sequences)
    windows = training_windows([s for s in train if len(s) >= 2], shape.history_length)
    if not len(windows):
        return None
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    net = SASRecNet(shape)
    optimiser = torch.optim.Adam(net.parameters(), lr=settings.learning_rate)
    trained = np.zeros(shape.n_items, dtype=bool)
    trained[np.concatenate(train)] = True
    checkable = len(held.targets) > 0 and shape.n_items > VALIDATION_K
    validation: list[float] = []
    best, since = copy.deepcopy(net.state_dict()), 0
    for _ in range(settings.max_epochs):
        train_epoch(net, optimiser, windows, settings, rng)
        if not checkable:
            best = net.state_dict()
            continue
        validation.append(held.recall(net, trained, shape.history_length))
        if validation[-1] >= max(validation):  # a tie keeps the later, longer-trained epoch
            best, since = copy.deepcopy(net.state_dict()), 0
        else:
            since += 1
            if since >= settings.patience:
                break
    net.load_state_dict(best)
    net.eval()
    return Fitted(net, validation)
