"""Zero-shot scoring over adapted text vectors: whitened, then mapped by what co-interactions
teach (:mod:`coldbrew.models.adaptor`), the encoder itself frozen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, Self

import numpy as np

from coldbrew.data.frames import pd
from coldbrew.data.schema import Dataset
from coldbrew.models.adaptor import (
    Corpus,
    MapSettings,
    Whitening,
    adapt,
    held_out_items,
    pooled_validation,
    train_map,
)
from coldbrew.models.zeroshot import VECTOR_DTYPES, ZeroShotRecommender
from coldbrew.store.rows import as_rows
from coldbrew.text.encoder import Encoder, l2_normalize

CHOICES = ("raw", "whitened", "adapted")
"""What a fit may end with: the encoder's vectors as they are, whitened, or whitened and
mapped."""


class AdaptedZeroShotRecommender(ZeroShotRecommender):
    """:class:`~coldbrew.models.zeroshot.ZeroShotRecommender` over adapted vectors.

    Item vectors and the user's own words alike become ``unit(whiten(v) @ M)``. The fit whitens
    the catalogue's vectors, trains ``M`` on the co-interactions of all but ``holdout`` of the
    warm items, and keeps whichever of ``choices`` ranks those held-out items best for the
    users who liked them (the first of equals; without such users, the first choice).

    Parameters
    ----------
    encoder
        Any :class:`~coldbrew.text.Encoder` (frozen).
    choices
        Among ``raw``, ``whitened``, ``adapted``; one choice is kept without validating.
    shrinkage
        Whitening shrinkage (:meth:`~coldbrew.models.adaptor.Whitening.fit`).
    holdout
        Share of the warm items held out to choose and to stop training on.
    epochs, penalty, temperature, learning_rate, batch_size, pairs_per_epoch, patience, seed
        The map's training (:class:`~coldbrew.models.adaptor.MapSettings`).
    mapping
        A map trained elsewhere (other catalogues, :func:`~coldbrew.models.adaptor.train_map`):
        used as it is, with this catalogue's own whitening, instead of training one.
    **kwargs
        :class:`~coldbrew.models.zeroshot.ZeroShotRecommender`'s settings.
    """

    kind = "adapted_zeroshot"
    # a given mapping is a start, not a setting: what the fit ends with is saved as an array
    runtime_arguments = (*ZeroShotRecommender.runtime_arguments, "mapping")

    def __init__(
        self,
        encoder: Encoder,
        *,
        choices: tuple[str, ...] = CHOICES,
        shrinkage: float = 0.1,
        holdout: float = 0.15,
        epochs: int = 10,
        penalty: float = 0.01,
        temperature: float = 0.07,
        learning_rate: float = 1e-3,
        batch_size: int = 256,
        pairs_per_epoch: int = 32_768,
        patience: int = 2,
        seed: int = 0,
        mapping: np.ndarray | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(encoder, **kwargs)
        unknown = [c for c in choices if c not in CHOICES]
        if unknown or not choices:
            raise ValueError(f"choices must be among {', '.join(CHOICES)}, got {choices}")
        self.choices = tuple(choices)
        self.shrinkage = shrinkage
        self.holdout = holdout
        self.epochs, self.penalty, self.temperature = epochs, penalty, temperature
        self.learning_rate, self.batch_size = learning_rate, batch_size
        self.pairs_per_epoch, self.patience, self.seed = pairs_per_epoch, patience, seed
        self.given_mapping = mapping
        self.whitening: Whitening | None = None
        self.mapping = np.zeros((0, 0), dtype=np.float32)
        self.chosen = ""
        self.validation: dict[str, float] = {}

    @property
    def settings(self) -> MapSettings:
        """The map's training, from the hyperparameters of the same names."""
        return MapSettings(**{f.name: getattr(self, f.name) for f in fields(MapSettings)})

    def get_params(self) -> dict[str, Any]:
        # what the fit chose travels with the params (read back by _from_params)
        return {
            **super().get_params(),
            "fitted": {"chosen": self.chosen, "validation": self.validation},
        }

    @classmethod
    def _from_params(cls, params: Mapping[str, Any], **components: Any) -> Self:
        params = dict(params)
        fitted = params.pop("fitted", {})
        params["choices"] = tuple(params["choices"])
        model = super()._from_params(params, **components)
        model.chosen, model.validation = fitted.get("chosen", ""), fitted.get("validation", {})
        return model

    # ---- fitting ------------------------------------------------------------------------
    def _fit(self, dataset: Dataset) -> None:
        self.whitening = None  # the catalogue is encoded raw first
        super()._fit(dataset)
        raw = np.asarray(self.item_vectors, dtype=np.float32)
        whitening = Whitening.fit(raw, self.shrinkage)
        whitened = self._corpus(l2_normalize(whitening.transform(raw)))
        self.validation = {}
        options = self._options(whitening, whitened)
        if len(options) > 1:
            self._validate(options, self._corpus(raw), whitened)
        self.chosen = max(options, key=lambda c: self.validation.get(c, -np.inf))
        self.whitening, self.mapping = options[self.chosen]
        self.item_vectors = as_rows(self._adapt(raw), VECTOR_DTYPES[self.vector_dtype])

    def _corpus(self, vectors: np.ndarray) -> Corpus:
        """The fitted catalogue's ``vectors`` with who liked what, ``holdout`` held out."""
        histories = [
            self.item_ids.rows(items, skip_unknown=True) for items in self._history.values()
        ]
        held = held_out_items(histories, len(vectors), self.holdout, self.settings.seed)
        return Corpus(vectors, histories, held)

    def corpus(self) -> Corpus:
        """This catalogue's whitened vectors and co-interactions, to train a map on together with
        other catalogues' (:func:`~coldbrew.models.adaptor.train_map`; a model fitted with
        ``choices=("whitened",)``)."""
        if self.chosen != "whitened":
            raise ValueError(f"corpus() needs a whitened-only fit, this one is {self.chosen!r}")
        return self._corpus(np.asarray(self.item_vectors, dtype=np.float32))

    def _options(
        self, whitening: Whitening, whitened: Corpus
    ) -> dict[str, tuple[Whitening, np.ndarray]]:
        """Each allowed choice's whitening and map (training the map where it is allowed)."""
        dim = whitened.vectors.shape[1]
        eye = np.eye(dim, dtype=np.float32)
        options = {"raw": (Whitening.identity(dim), eye), "whitened": (whitening, eye)}
        if "adapted" in self.choices:
            if self.given_mapping is not None:
                mapping = np.asarray(self.given_mapping, dtype=np.float32)
            else:
                mapping, scores = train_map([whitened], self.settings)
                self.validation["best_epoch"] = float(np.argmax(scores)) if scores else 0.0
            options["adapted"] = (whitening, mapping)
        return {c: options[c] for c in self.choices}

    def _validate(
        self, options: Mapping[str, tuple[Whitening, np.ndarray]], raw: Corpus, whitened: Corpus
    ) -> None:
        for choice, (_, mapping) in options.items():
            score = pooled_validation([raw if choice == "raw" else whitened], mapping)
            if score is not None:
                self.validation[choice] = score

    def _adapt(self, vectors: np.ndarray) -> np.ndarray:
        if self.whitening is None:
            return vectors
        return adapt(vectors, self.whitening, self.mapping)

    def _encode_items(self, items: pd.DataFrame) -> np.ndarray:
        return self._adapt(super()._encode_items(items))

    def _query_vectors(self, texts: list[str]) -> np.ndarray:
        return self._adapt(super()._query_vectors(texts))

    # ---- persistence --------------------------------------------------------------------
    def _get_state(self) -> dict[str, np.ndarray]:
        if self.whitening is None:
            raise ValueError("an unfitted adapted model has no state to save")
        return {
            **super()._get_state(),
            "whiten_mean": self.whitening.mean,
            "whiten_matrix": self.whitening.matrix,
            "mapping": self.mapping,
        }

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        super()._set_state(arrays)
        self.whitening = Whitening(arrays["whiten_mean"], arrays["whiten_matrix"])
        self.mapping = arrays["mapping"]
