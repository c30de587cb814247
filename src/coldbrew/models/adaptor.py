"""A light adaptor over a frozen encoder's item vectors (UniSRec's recipe, issue 24 items 5-6).

Two steps, both fitted in seconds on a CPU:

1. **Whitening** (:class:`Whitening`) of the catalogue's item vectors: the mean removed and the
   covariance made the identity (ZCA, i.e. PCA-whitening rotated back, so the output keeps the
   encoder's coordinates and a map learned on one catalogue applies to another's), with an
   optional shrinkage toward plain centring. It reads item text only, no interactions.
2. **A linear map** ``M = I + D`` (:func:`train_map`) trained contrastively on co-interactions:
   a user's mean whitened liked vector (without the target) should be closer to the target item
   than to the other targets of its batch (in-batch InfoNCE), with ``penalty * |D|^2`` pulling
   the map toward the identity (whitened only), and early stopping on held-out *warm items*
   (:func:`held_out_items`): users rank items the map never saw, as the cold-item protocol
   ranks new items, so the map keeps only what carries to unseen items.

The training pairs of several catalogues can be pooled (:class:`Corpus` per catalogue, each
whitened on its own): a map trained on four catalogues applies to a fifth with no interactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from coldbrew.eval.metrics import ndcg_at_k_scores
from coldbrew.text.encoder import l2_normalize

RELATIVE_FLOOR = 1e-6
"""Covariance directions with less variance than this share of the largest are dropped (a
catalogue with fewer items than dimensions), instead of being blown up by their inverse."""


@dataclass(frozen=True)
class Whitening:
    """``(x - mean) @ matrix``: identity covariance on the vectors it was fitted on."""

    mean: np.ndarray
    matrix: np.ndarray

    @classmethod
    def identity(cls, dim: int) -> Whitening:
        """No whitening at all (what a catalogue of fewer than two items gets)."""
        return cls(np.zeros(dim, dtype=np.float32), np.eye(dim, dtype=np.float32))

    @classmethod
    def fit(cls, vectors: np.ndarray, shrinkage: float = 0.0) -> Whitening:
        """ZCA whitening of ``vectors`` (rows).

        Parameters
        ----------
        vectors : np.ndarray
            The catalogue's item vectors, shape ``(n_items, dim)``.
        shrinkage : float
            Added to every eigenvalue, as a share of their mean (0: exact whitening; larger
            values amplify the weak directions less).

        Returns
        -------
        Whitening
            The identity where there are fewer than two items.
        """
        if shrinkage < 0:
            raise ValueError(f"shrinkage must be >= 0, got {shrinkage}")
        x = np.asarray(vectors, dtype=np.float64)
        if len(x) < 2:
            return cls.identity(x.shape[1])
        mean = x.mean(axis=0)
        values, bases = np.linalg.eigh(np.cov(x, rowvar=False))
        values = np.maximum(values, 0.0)
        keep = values > RELATIVE_FLOOR * max(values.max(), 1e-30)
        scale = np.zeros_like(values)
        scale[keep] = 1.0 / np.sqrt(values[keep] + shrinkage * values.mean())
        matrix = (bases * scale) @ bases.T
        return cls(mean.astype(np.float32), matrix.astype(np.float32))

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """The whitened rows, float32."""
        out: np.ndarray = (np.asarray(vectors, dtype=np.float32) - self.mean) @ self.matrix
        return out


def adapt(vectors: np.ndarray, whitening: Whitening, mapping: np.ndarray) -> np.ndarray:
    """Unit rows of ``whitening(vectors) @ mapping``."""
    return l2_normalize(whitening.transform(vectors) @ mapping)


@dataclass(frozen=True)
class Corpus:
    """One catalogue's training material: whitened item vectors and who liked what.

    ``histories`` holds each user's liked item rows, oldest first; ``held`` marks the warm items
    kept out of training to judge the map on (:func:`held_out_items`).
    """

    vectors: np.ndarray
    histories: Sequence[np.ndarray]
    held: np.ndarray


def held_out_items(
    histories: Sequence[np.ndarray], n_items: int, fraction: float, seed: int
) -> np.ndarray:
    """A boolean mask: ``fraction`` of the items with interactions, drawn with ``seed``."""
    if not 0 <= fraction < 1:
        raise ValueError(f"holdout must be in [0, 1), got {fraction}")
    touched = np.zeros(n_items, dtype=bool)
    for rows in histories:
        touched[rows] = True
    rng = np.random.default_rng(seed)
    return touched & (rng.random(n_items) < fraction)


def validation_ndcg(corpus: Corpus, items: np.ndarray, max_users: int = 2000) -> float | None:
    """Mean NDCG@20 of the held-out items ranked for the users who liked one, each user a unit
    mean of the vectors (``items``: unit rows) of their other, training items; ``None`` when no
    user can be asked."""

    held_rows = np.flatnonzero(corpus.held)
    users, relevant = [], []
    for rows in corpus.histories:
        mask = corpus.held[rows]
        if mask.any() and not mask.all():
            users.append(rows[~mask])
            relevant.append(np.isin(held_rows, rows[mask]))
    if not users or len(held_rows) < 2:
        return None
    pick = np.random.default_rng(0).permutation(len(users))[:max_users]
    profiles = l2_normalize(np.stack([items[users[i]].mean(axis=0) for i in pick]))
    rel = np.stack([relevant[i] for i in pick])
    scores = profiles @ items[held_rows].T
    return float(ndcg_at_k_scores(scores, rel, rel.sum(axis=1), 20).mean())


@dataclass(frozen=True)
class MapSettings:
    """How :func:`train_map` trains (the settings of
    :class:`~coldbrew.models.adapted.AdaptedZeroShotRecommender`)."""

    epochs: int = 10
    penalty: float = 0.01
    temperature: float = 0.07
    learning_rate: float = 1e-3
    batch_size: int = 256
    pairs_per_epoch: int = 32_768
    patience: int = 2
    seed: int = 0


def _pairs(corpus: Corpus) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (user, target) training pair, with each user's sum of whitened training vectors
    and count: a target's profile is the sum without it over the count less one."""
    users, targets = [], []
    sums = np.zeros((len(corpus.histories), corpus.vectors.shape[1]), dtype=np.float32)
    counts = np.zeros(len(corpus.histories), dtype=np.float32)
    for u, rows in enumerate(corpus.histories):
        rows = np.unique(rows[~corpus.held[rows]])
        if len(rows) >= 2:
            users.append(np.full(len(rows), u))
            targets.append(rows)
            sums[u] = corpus.vectors[rows].sum(axis=0)
            counts[u] = len(rows)
    if not users:
        return np.zeros((0, 2), dtype=np.int64), sums, counts
    return np.stack([np.concatenate(users), np.concatenate(targets)], axis=1), sums, counts


@dataclass
class _Trainer:
    """The InfoNCE training of ``M = I + D`` over one or more corpora (torch, CPU)."""

    corpora: Sequence[Corpus]
    settings: MapSettings

    def __post_init__(self) -> None:
        import torch

        torch.manual_seed(self.settings.seed)
        dim = self.corpora[0].vectors.shape[1]
        self.delta = torch.zeros((dim, dim), requires_grad=True)
        self.optimiser = torch.optim.Adam([self.delta], lr=self.settings.learning_rate)
        self.rng = np.random.default_rng(self.settings.seed)
        self.material = [(c, *_pairs(c)) for c in self.corpora]

    def mapping(self) -> np.ndarray:
        eye = np.eye(self.delta.shape[0], dtype=np.float32)
        out: np.ndarray = eye + self.delta.detach().numpy()
        return out

    def has_pairs(self) -> bool:
        return any(len(pairs) >= 2 for _, pairs, _, _ in self.material)

    def epoch(self) -> None:
        """One pass over a sample of each corpus's pairs, batches of one corpus at a time."""
        batches = []
        share = self.settings.pairs_per_epoch // len(self.material)
        for index, (_, pairs, _, _) in enumerate(self.material):
            order = self.rng.permutation(len(pairs))[:share]
            size = self.settings.batch_size
            batches += [(index, order[s : s + size]) for s in range(0, len(order), size)]
        for b in self.rng.permutation(len(batches)):
            index, rows = batches[b]
            if len(rows) >= 2:
                corpus, pairs, sums, counts = self.material[index]
                self.step(corpus, pairs, sums, counts, rows)

    def step(
        self,
        corpus: Corpus,
        pairs: np.ndarray,
        sums: np.ndarray,
        counts: np.ndarray,
        rows: np.ndarray,
    ) -> None:
        import torch
        import torch.nn.functional as F

        users, targets = pairs[rows, 0], pairs[rows, 1]
        items = torch.from_numpy(corpus.vectors[targets])
        profiles = (torch.from_numpy(sums[users]) - items) / torch.from_numpy(
            counts[users] - 1
        ).unsqueeze(1)
        mapping = torch.eye(self.delta.shape[0]) + self.delta
        left = F.normalize(profiles @ mapping, dim=1)
        right = F.normalize(items @ mapping, dim=1)
        logits = left @ right.T / self.settings.temperature
        same = torch.from_numpy(targets[:, None] == targets[None, :])
        logits = logits.masked_fill(same & ~torch.eye(len(rows), dtype=torch.bool), -1e9)
        loss = F.cross_entropy(logits, torch.arange(len(rows)))
        loss = loss + self.settings.penalty * (self.delta**2).sum()
        self.optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        self.optimiser.step()


def pooled_validation(corpora: Sequence[Corpus], mapping: np.ndarray | None) -> float | None:
    """The mean of :func:`validation_ndcg` over the corpora that can be asked, their vectors
    mapped by ``mapping`` (``None``: as they are)."""
    scores = []
    for corpus in corpora:
        vectors = corpus.vectors if mapping is None else corpus.vectors @ mapping
        score = validation_ndcg(corpus, l2_normalize(vectors))
        if score is not None:
            scores.append(score)
    return float(np.mean(scores)) if scores else None


def train_map(corpora: Sequence[Corpus], settings: MapSettings) -> tuple[np.ndarray, list[float]]:
    """The linear map of the best validated epoch (the identity is epoch 0).

    Parameters
    ----------
    corpora : Sequence[Corpus]
        One per catalogue (all of one dimension), each whitened on its own.
    settings : MapSettings
        Epochs, penalty toward the identity, temperature and the rest.

    Returns
    -------
    tuple[np.ndarray, list[float]]
        The map ``(dim, dim)``, and the validation NDCG@20 after each epoch (epoch 0 first;
        empty when nothing could be validated: then the identity is returned untrained).
    """
    if not corpora:
        raise ValueError("train_map needs at least one corpus")
    dim = corpora[0].vectors.shape[1]
    if any(c.vectors.shape[1] != dim for c in corpora):
        raise ValueError(f"every corpus must have {dim}-d vectors")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is fastest, and fair on shared cores
    try:
        return _train(_Trainer(corpora, settings), settings)
    finally:
        torch.set_num_threads(threads)


def _train(trainer: _Trainer, settings: MapSettings) -> tuple[np.ndarray, list[float]]:
    """:func:`train_map`'s epochs with early stopping."""
    corpora = trainer.corpora
    first = pooled_validation(corpora, None)
    if first is None or not trainer.has_pairs():
        return trainer.mapping(), []
    history, best, since = [first], (first, trainer.mapping()), 0
    for _ in range(settings.epochs):
        trainer.epoch()
        mapping = trainer.mapping()
        score = pooled_validation(corpora, mapping)
        history.append(score if score is not None else float("nan"))
        since = 0 if history[-1] > best[0] else since + 1
        if since == 0:
            best = (history[-1], mapping)
        elif since >= settings.patience:
            break
    return best[1], history
