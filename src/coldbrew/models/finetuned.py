"""A zero-shot-style recommender over a fine-tuned encoder saved inside the model directory.

Scoring is exactly :class:`~coldbrew.models.zeroshot.ZeroShotRecommender`'s; what differs is that
the encoder's weights (safetensors) travel with the model in ``<dir>/encoder``, so a saved model
loads and recommends identically anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text.encoder import Encoder
from coldbrew.text.sbert import SentenceTransformerEncoder

ENCODER_DIR = "encoder"


class FineTunedRecommender(ZeroShotRecommender):
    """Zero-shot scoring with a fine-tuned encoder (no cache).

    A :class:`SentenceTransformerEncoder` is saved with the model; other encoders (the hashing
    encoder of the tests) are rebuilt from their config.
    """

    kind = "finetuned"

    def __init__(self, encoder: Encoder, **kwargs: Any) -> None:
        if kwargs.get("cache_dir"):
            raise ValueError("a fine-tuned encoder must not share the embedding cache")
        super().__init__(encoder, **kwargs)

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        if isinstance(self.encoder, SentenceTransformerEncoder):
            params["encoder"] = {**params["encoder"], "model": ENCODER_DIR}
        return params

    def save(self, path: str | Path) -> Path:
        path = super().save(path)
        if isinstance(self.encoder, SentenceTransformerEncoder):
            self.encoder.st_model.save(str(path / ENCODER_DIR), safe_serialization=True)
        return path

    @classmethod
    def _from_params(cls, params: Mapping[str, Any], **components: Any) -> Self:
        params = dict(params)
        if (
            components.get("encoder") is None
            and params["encoder"]["type"] == "sentence-transformers"
        ):
            config = dict(params["encoder"])
            model_dir = components.get("model_dir")
            if model_dir is None:
                raise ValueError("loading a fine-tuned model needs its directory")
            config.pop("type", None)
            model = str(Path(model_dir) / config.pop("model"))
            components = {**components, "encoder": SentenceTransformerEncoder(model, **config)}
        components = {**components, "cache_dir": None}
        return super()._from_params(params, **components)
