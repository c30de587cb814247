"""A zero-shot-style recommender over a fine-tuned encoder saved inside the model directory.

Scoring is exactly :class:`~coldbrew.models.zeroshot.ZeroShotRecommender`'s; what differs is that
the encoder's weights (safetensors) travel with the model in ``<dir>/encoder``, so a saved model
loads and recommends identically anywhere. A two-tower model with separate weights also carries
its user tower in ``<dir>/user_encoder``: it encodes the user's words and attributes, and the
texts of the items they liked.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np

from coldbrew.data.frames import pd
from coldbrew.models.base import ModelNotFittedError
from coldbrew.models.zeroshot import ZeroShotRecommender, set_rows
from coldbrew.text.cache import encode_texts
from coldbrew.text.encoder import Encoder
from coldbrew.text.factory import load_encoder
from coldbrew.text.sbert import SentenceTransformerEncoder

ENCODER_DIR = "encoder"
USER_ENCODER_DIR = "user_encoder"


class FineTunedRecommender(ZeroShotRecommender):
    """Zero-shot scoring with a fine-tuned encoder (no cache).

    ``user_encoder`` (optional) is the user tower of a two-tower model with separate weights;
    without it one encoder reads both sides. A :class:`SentenceTransformerEncoder` is saved with
    the model; other encoders (the hashing encoder of the tests) are rebuilt from their config.
    """

    kind = "finetuned"

    def __init__(
        self, encoder: Encoder, *, user_encoder: Encoder | None = None, **kwargs: Any
    ) -> None:
        if kwargs.get("cache_dir"):
            raise ValueError("cache_dir must be None: a fine-tuned encoder shares no cache")
        super().__init__(encoder, **kwargs)
        self.user_encoder = user_encoder
        self.user_item_vectors = np.zeros((0, 0), dtype=np.float32)

    @property
    def query_encoder(self) -> Encoder:
        return self.user_encoder or self.encoder

    @property
    def liked_item_vectors(self) -> np.ndarray:
        return self.user_item_vectors if self.user_encoder is not None else self.item_vectors

    def get_params(self) -> dict[str, Any]:
        # a sentence-transformers encoder is saved in a folder beside config.json: its config
        # names that folder, not the model it was loaded from
        params = super().get_params()
        for key, folder in (("encoder", ENCODER_DIR), ("user_encoder", USER_ENCODER_DIR)):
            if isinstance(getattr(self, key), SentenceTransformerEncoder):
                params[key] = {**params[key], "model": folder}
        return params

    def _fit(self, dataset: Any) -> None:
        super()._fit(dataset)
        if self.user_encoder is not None:
            self.user_item_vectors = self._encode_user_side(dataset.items)

    def _encode_user_side(self, items: pd.DataFrame) -> np.ndarray:
        if self.item_template is None or self.user_encoder is None:
            raise ModelNotFittedError(
                f"{type(self).__name__} has no user-side encoder: fit it first"
            )
        texts = self.item_template.render_frame(items)
        return encode_texts(self.user_encoder, texts, kind="passage")

    def _add_items(self, items: pd.DataFrame, rows: np.ndarray) -> None:
        super()._add_items(items, rows)
        if self.user_encoder is None:
            return
        self.user_item_vectors = set_rows(
            self.user_item_vectors, len(self.item_ids), rows, self._encode_user_side(items)
        )

    def _get_state(self) -> dict[str, np.ndarray]:
        state = super()._get_state()
        if self.user_encoder is not None:
            state["user_item_vectors"] = self.user_item_vectors
        return state

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        super()._set_state(arrays)
        if "user_item_vectors" in arrays:
            self.user_item_vectors = arrays["user_item_vectors"].astype(np.float32)

    def save(self, path: str | Path, *, profiles: bool = True) -> Path:
        path = super().save(path, profiles=profiles)
        for encoder, folder in ((self.encoder, ENCODER_DIR), (self.user_encoder, USER_ENCODER_DIR)):
            if isinstance(encoder, SentenceTransformerEncoder):
                encoder.st_model.save(str(path / folder), safe_serialization=True)
        return path

    @classmethod
    def _from_params(cls, params: Mapping[str, Any], **components: Any) -> Self:
        params = dict(params)
        user_config = params.pop("user_encoder", None)
        model_dir = components.get("model_dir")

        def rebuild(config: Mapping[str, Any]) -> Encoder:
            if config["type"] != "sentence-transformers":
                return load_encoder(config)
            if model_dir is None:
                raise ValueError("loading a fine-tuned model needs its directory")
            settings = {k: v for k, v in config.items() if k not in ("type", "model")}
            return SentenceTransformerEncoder(str(Path(model_dir) / config["model"]), **settings)

        if components.get("encoder") is None:
            components = {**components, "encoder": rebuild(params["encoder"])}
        model = super()._from_params(params, **{**components, "cache_dir": None})
        if user_config is not None:
            model.user_encoder = rebuild(user_config)
        return model
