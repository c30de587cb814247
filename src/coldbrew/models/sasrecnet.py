"""The network and training loop of :class:`~coldbrew.models.sasrec.SASRecRecommender` (torch,
CPU): item embeddings plus learned positions, a few causal self-attention blocks, and a full
softmax over the catalogue for the next item (Kang & McAuley's SASRec, with the cross-entropy
loss that later comparisons found stronger than one sampled negative).

Sequences hold item rows plus one (0 pads) and are padded on the left, so a user's latest item
always sits at the last position, the one that is read when scoring. Positions count from the
first real item: a two-like query reads as the first two steps of a training window did (counted
from the end, a short query's last item would sit where training only ever put later steps).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PAD = 0
"""The padding index; item row ``r`` is index ``r + 1``."""


@dataclass(frozen=True)
class NetShape:
    """What the network is made of (the recommender's hyperparameters that shape it)."""

    n_items: int
    hidden: int
    blocks: int
    heads: int
    history_length: int
    dropout: float


class SASRecNet(nn.Module):
    """Causal self-attention over a left-padded sequence of item indices."""

    def __init__(self, shape: NetShape) -> None:
        super().__init__()
        self.dims = shape
        self.items = nn.Embedding(shape.n_items + 1, shape.hidden, padding_idx=PAD)
        self.positions = nn.Embedding(shape.history_length, shape.hidden)
        layer = nn.TransformerEncoderLayer(
            shape.hidden,
            shape.heads,
            dim_feedforward=shape.hidden,
            dropout=shape.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, shape.blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(shape.hidden)
        self.drop = nn.Dropout(shape.dropout)

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Hidden states ``(batch, length, hidden)``; position ``t`` has read items ``<= t``."""
        at = ((seqs != PAD).cumsum(dim=1) - 1).clamp(min=0)  # from the first real item
        x = self.items(seqs) * math.sqrt(self.dims.hidden) + self.positions(at)
        x = self.blocks(self.drop(x), mask=self._mask(seqs))
        out: torch.Tensor = self.norm(x)
        return out

    def _mask(self, seqs: torch.Tensor) -> torch.Tensor:
        """``(batch * heads, length, length)``, True where a position may not look: the future,
        and padding other than itself (so a padded position reads only itself, never nothing)."""
        length = seqs.shape[1]
        future = torch.ones(length, length, dtype=torch.bool).triu(1)
        padded = (seqs == PAD)[:, None, :] & ~torch.eye(length, dtype=torch.bool)[None]
        mask = future[None] | padded
        return mask.repeat_interleave(self.dims.heads, dim=0)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores of every item row (no padding column) for each hidden state."""
        return hidden @ self.items.weight[1:].T


def left_padded(rows: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Each sequence of item rows as indices (row + 1), its last ``length``, padded on the left."""
    out = np.full((len(rows), length), PAD, dtype=np.int64)
    for i, seq in enumerate(rows):
        tail = np.asarray(seq[-length:], dtype=np.int64) + 1
        if len(tail):
            out[i, length - len(tail) :] = tail
    return out


def training_windows(sequences: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Every sequence cut, from its end backwards, into windows of up to ``length + 1`` items
    (consecutive windows share one item, so every step is a target once), left-padded to
    ``length + 1``: inputs are ``[:, :-1]``, next-item targets ``[:, 1:]``."""
    windows = []
    for seq in sequences:
        for end in range(len(seq), 1, -length):
            windows.append(seq[max(0, end - length - 1) : end])
    return left_padded(windows, length + 1)


@dataclass(frozen=True)
class TrainSettings:
    """How the network is trained: Adam, batches of windows, epochs until validation stalls."""

    learning_rate: float
    batch_size: int
    max_epochs: int
    patience: int
    seed: int


def batches(n: int, size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Shuffled index batches covering ``range(n)``."""
    order = rng.permutation(n)
    for start in range(0, n, size):
        yield order[start : start + size]


def train_epoch(
    net: SASRecNet,
    optimiser: torch.optim.Optimizer,
    windows: np.ndarray,
    settings: TrainSettings,
    rng: np.random.Generator,
) -> float:
    """One pass of full-softmax next-item cross-entropy over ``windows``; the mean loss."""
    net.train()
    total, count = 0.0, 0
    for rows in batches(len(windows), settings.batch_size, rng):
        batch = torch.from_numpy(windows[rows])
        inputs, targets = batch[:, :-1], batch[:, 1:]
        real = targets != PAD
        hidden = net(inputs)[real]
        loss = F.cross_entropy(net.logits(hidden), targets[real] - 1)
        optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        total, count = total + loss.item() * len(hidden), count + len(hidden)
    return total / max(count, 1)


def last_states(net: SASRecNet, seqs: np.ndarray, chunk: int = 512) -> np.ndarray:
    """The hidden state at the last position of each left-padded sequence, float32."""
    net.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(seqs), chunk):
            out.append(net(torch.from_numpy(seqs[start : start + chunk]))[:, -1].numpy())
    if not out:
        return np.zeros((0, net.dims.hidden), dtype=np.float32)
    return np.concatenate(out).astype(np.float32)


def item_vectors(net: SASRecNet) -> np.ndarray:
    """The output embedding of every item row, float32 ``(n_items, hidden)``."""
    vectors: np.ndarray = net.items.weight[1:].detach().numpy().astype(np.float32)
    return vectors


def state_arrays(net: SASRecNet) -> dict[str, np.ndarray]:
    """The network's weights as named numpy arrays (what a saved model keeps)."""
    return {f"net:{k}": v.detach().numpy().copy() for k, v in net.state_dict().items()}


def from_arrays(shape: NetShape, arrays: dict[str, np.ndarray]) -> SASRecNet:
    """A network of ``shape`` holding the weights :func:`state_arrays` wrote."""
    net = SASRecNet(shape)
    state = {k[len("net:") :]: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}
    net.load_state_dict(state)
    net.eval()
    return net
