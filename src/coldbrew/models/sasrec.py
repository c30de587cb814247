"""A self-attentive sequential recommender (SASRec): what a user likes next, read from the order
of everything they liked before, not only their latest few likes (:mod:`.sequence`).

:class:`SASRecRecommender` embeds each item and its position from the end of the user's history,
runs ``blocks`` causal self-attention blocks over the last ``history_length`` likes and scores every
item by the dot product of the last position's state with the item's embedding
(:mod:`.sasrecnet`). It trains on next-item prediction with a full softmax over the catalogue,
Adam, and early stopping on an inner validation: each user with three or more training likes
holds out the latest one (the protocol's "last-but-one", one step earlier), and the epoch whose
network found most of those in its top 10 (the rest of the history masked) is the one kept.

Like the other interaction-only models (:class:`~.cfbase.CFRecommender`), a user with no liked
item the model knows gets popularity and items nobody liked go below the others. Data without
timestamps (or where no user liked two items) has no order to learn from: the model stays
silent and scores every item 0 for everyone, as the transitions part does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from coldbrew.data.schema import Dataset, has_timestamps
from coldbrew.models.base import UserQuery
from coldbrew.models.cfbase import CFRecommender

if TYPE_CHECKING:  # torch is imported by the methods that use the network, not with the model
    from coldbrew.models.sasrecfit import Fitted
    from coldbrew.models.sasrecnet import NetShape, SASRecNet


class SASRecRecommender(CFRecommender):
    """Causal self-attention over the user's time-ordered likes, trained on the next item.

    Parameters
    ----------
    hidden
        Width of the item, position and hidden vectors.
    blocks
        Self-attention blocks (each: one attention layer and a feed-forward layer).
    heads
        Attention heads per block (``hidden`` must divide by it).
    history_length
        How many of a user's latest likes are read; longer histories train as several windows.
    dropout
        Dropout on the embeddings and inside each block while training.
    learning_rate, batch_size
        Adam's step size; training windows per step.
    max_epochs, patience
        Training stops after ``max_epochs`` or after ``patience`` epochs without a better inner
        validation Recall@10; the best epoch's weights are kept.
    seed
        Seeds the weights, dropout and batch order (one seed, one model).

    Notes
    -----
    The defaults were chosen on ml-100k's inner validation (the bench's seed-42 next-item
    split's training part, benchmarks/sasrec_validation.py; never its test): best Recall@10
    0.0501 with two blocks and batches of 128 at learning rate 0.001 for up to 30 epochs, 0.0800
    with one block and batches of 32, 0.1301 at learning rate 0.003, 0.1535 at 0.003 for up to
    60 epochs and 0.1546 at 0.005 (the defaults; benchmarks/notes/2026-12-07-sequential.md).
    The patience, 10 (it was 3), was chosen on the whole 60-epoch validation curves of ml-100k,
    ml-latest-small and online-retail: a patience of 3 stopped on a noisy dip (ml-100k kept
    epoch 20 at 0.1429, ml-latest-small epoch 11 at 0.0498), 10 kept the best epoch on all three
    (0.2079, 0.1045, 0.3031), and each dataset left out the other two chose the same.
    """

    kind = "sasrec"

    def __init__(
        self,
        hidden: int = 64,
        blocks: int = 1,
        heads: int = 1,
        history_length: int = 50,
        dropout: float = 0.2,
        learning_rate: float = 5e-3,
        batch_size: int = 32,
        max_epochs: int = 60,
        patience: int = 10,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (("hidden", hidden), ("blocks", blocks), ("heads", heads)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must divide by heads ({heads})")
        if history_length < 2 or max_epochs < 1 or patience < 1 or batch_size < 1:
            raise ValueError(
                "need history_length >= 2, max_epochs >= 1, patience >= 1 and batch_size >= 1, got "
                f"{history_length}, {max_epochs}, {patience} and {batch_size}"
            )
        if not 0.0 <= dropout < 1.0 or learning_rate <= 0:
            raise ValueError(
                f"need 0 <= dropout < 1 and learning_rate > 0, got {dropout}, {learning_rate}"
            )
        self.hidden, self.blocks, self.heads = hidden, blocks, heads
        self.history_length, self.dropout = history_length, dropout
        self.learning_rate, self.batch_size = learning_rate, batch_size
        self.max_epochs, self.patience, self.seed = max_epochs, patience, seed
        self.net: SASRecNet | None = None
        self.validation: list[float] = []
        """Inner validation Recall@10 after each epoch of the last fit (empty: none asked)."""

    def _shape(self, n_items: int) -> NetShape:
        from coldbrew.models.sasrecnet import NetShape

        return NetShape(
            n_items, self.hidden, self.blocks, self.heads, self.history_length, self.dropout
        )

    def _fit_cf(self, matrix: sp.csr_matrix) -> None:
        self.net, self.validation = None, []

    def _fit(self, dataset: Dataset) -> None:
        super()._fit(dataset)
        if self.silent_reason is not None:
            return
        if not has_timestamps(dataset.positives()):
            self.silent_reason = "no timestamps"
            return
        from coldbrew.models.sasrecfit import fit_network
        from coldbrew.models.sasrecnet import TrainSettings

        sequences = [
            self.item_ids.rows(items, skip_unknown=True) for items in self._history.values()
        ]
        settings = TrainSettings(
            self.learning_rate, self.batch_size, self.max_epochs, self.patience, self.seed
        )
        fitted: Fitted | None = fit_network(self._shape(len(self.item_ids)), sequences, settings)
        if fitted is None:
            self.silent_reason = "no user liked two items in time order"
            return
        self.net, self.validation = fitted.net, fitted.validation

    def _score_subset(self, queries: Sequence[UserQuery], rows: np.ndarray) -> np.ndarray:
        if self.net is None:  # no order learned: nothing to say, for anyone
            return np.zeros((len(queries), len(rows)), dtype=np.float32)
        return super()._score_subset(queries, rows)

    def propose(self, query: UserQuery, n: int) -> np.ndarray:
        if self.net is None:
            return np.zeros(0, dtype=np.int64)
        return super().propose(query, n)

    def _score_known(self, queries: Sequence[UserQuery]) -> np.ndarray:
        rows = self._signal().rows
        if self.net is None:  # not reached: _score_subset answers for a silent model
            return np.zeros((len(queries), len(rows)), dtype=np.float32)
        from coldbrew.models.sasrecnet import item_vectors, last_states, left_padded

        seqs = left_padded([self._liked_rows(q) for q in queries], self.history_length)
        scores: np.ndarray = last_states(self.net, seqs) @ item_vectors(self.net)[rows].T
        return scores

    def _get_state(self) -> dict[str, np.ndarray]:
        from coldbrew.models.sasrecnet import state_arrays

        state = {**super()._get_state(), "validation": np.asarray(self.validation, np.float64)}
        return {**state, **(state_arrays(self.net) if self.net is not None else {})}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        from coldbrew.models.sasrecnet import from_arrays

        super()._set_state(arrays)
        self.validation = [float(v) for v in arrays["validation"]]
        weights = {k: v for k, v in arrays.items() if k.startswith("net:")}
        n_items = len(weights["net:items.weight"]) - 1 if weights else 0
        self.net = from_arrays(self._shape(n_items), weights) if weights else None
