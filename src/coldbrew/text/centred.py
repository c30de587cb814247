"""An encoder wrapper that removes each script's mean vector (see
:func:`coldbrew.text.language.centre_by_script`), for services that hold one encoder.

The means are part of the wrapper's name and config, so vectors stored under that name stay
consistent with the queries encoded later, and a different set of means is a different model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from coldbrew.text.encoder import Encoder, TextKind
from coldbrew.text.language import centre_by_script, group_means, script_groups

MARK = "+script-centred:"


class ScriptCentredEncoder:
    """``base``'s vectors less the mean of their text's script group (``means``: 2 x dim)."""

    def __init__(self, base: Encoder, means: np.ndarray) -> None:
        means = np.asarray(means, dtype=np.float32)
        if means.ndim != 2 or means.shape[0] != 2:
            raise ValueError(f"means must have shape (2, dim), got {means.shape}")
        self.base = base
        self.means = means

    @property
    def name(self) -> str:
        digest = hashlib.sha256(self.means.tobytes()).hexdigest()[:10]
        return f"{self.base.name}{MARK}{digest}"

    @property
    def dim(self) -> int:
        return self.base.dim

    def config(self) -> dict[str, Any]:
        return {"type": "script-centred", "base": self.base.config(), "means": self.means.tolist()}

    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: TextKind = "passage",
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        vectors = self.base.encode(
            texts, kind=kind, batch_size=batch_size, show_progress=show_progress
        )
        return centre_by_script(vectors, texts, self.means)


def centred_for(base: Encoder, texts: Sequence[str], vectors: np.ndarray | None = None) -> Encoder:
    """``base`` wrapped with the script means of ``texts`` (their ``vectors`` if already
    encoded), or ``base`` itself when ``texts`` do not hold both scripts in number."""
    if MARK in base.name:
        return base
    groups = script_groups(texts)
    if min(np.bincount(groups, minlength=2)) == 0:
        return base
    if vectors is None:
        vectors = base.encode(texts, kind="passage")
    means = group_means(vectors, groups)
    return ScriptCentredEncoder(base, means) if len(means) else base
