"""Encoding a training step's texts with little wasted work.

A step reads each distinct text of a side once (popular items come back several times in a
batch), and reads all its texts in chunks of similar length, so short texts are not padded to
the longest of the batch: on ml-100k a batch of 32 pairs holds 64 texts, 13 tokens long at the
median and 31 at most. The same text on both sides is read twice, with two dropout draws (the
domain stage's SimCSE needs both views).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

CHUNK_TEXTS = 16
"""Texts per forward pass when a step's texts are read in length-sorted chunks."""


def length_chunks(lengths: Sequence[int], size: int = CHUNK_TEXTS) -> list[np.ndarray]:
    """Row indices sorted by length (stable), cut into chunks of at most ``size`` rows."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[start : start + size] for start in range(0, len(order), size)]


def embed_sides(model: Any, sides: Sequence[Sequence[str]], size: int = CHUNK_TEXTS) -> list[Any]:
    """Unit vectors of each side's texts, by one ``SentenceTransformer`` (graph kept).

    The distinct texts of every side are tokenised together and encoded once, in
    length-sorted chunks of ``size`` (each padded only to its own longest text); each side's
    rows come back in its own order, a side's repeats sharing one vector. The tokens are
    moved to the model's device (the tokenizer makes them on the CPU), and so are the vectors.
    """
    import torch

    keys = [(s, text) for s, texts in enumerate(sides) for text in dict.fromkeys(texts)]
    features = {
        k: v for k, v in model.preprocess([t for _, t in keys]).items() if hasattr(v, "shape")
    }
    lengths = features["attention_mask"].sum(dim=1).tolist()
    right_padded = getattr(model.tokenizer, "padding_side", "right") == "right"
    chunks = length_chunks(lengths, size)
    outputs = []
    for rows in chunks:
        width = max(lengths[r] for r in rows) if right_padded else None
        index = torch.from_numpy(rows)
        chunk = {
            k: (v[index][:, :width] if v.dim() == 2 else v[index]).to(model.device)
            for k, v in features.items()
        }
        outputs.append(model(chunk)["sentence_embedding"])
    vectors = torch.nn.functional.normalize(torch.cat(outputs), dim=-1)
    position = np.empty(len(keys), dtype=np.int64)  # row of each key in the chunks' output
    position[np.concatenate(chunks)] = np.arange(len(keys))
    row = {key: int(position[r]) for r, key in enumerate(keys)}
    return [
        vectors[torch.tensor([row[(s, t)] for t in texts], dtype=torch.long, device=vectors.device)]
        for s, texts in enumerate(sides)
    ]
