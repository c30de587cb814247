"""A saved model served as it is (``coldbrew serve --model DIR``): a ``coldbrew train`` output
directory or any saved :class:`~coldbrew.models.Recommender`.

Such a model was trained on a dataset's own item fields (``title``, ``desc``, ``genres``...), not
on the service's rendered ``text``: the engine hands its parts those fields under their own names
(an import keeps every column under its name, :mod:`coldbrew.live.importer`), and a field that
no stored item has is named in a warning instead of being read as empty in silence. It is named
by its kind and directory (``finetuned:run-7``), with the encoder that reads its queries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from coldbrew.data.schema import ITEM_ID
from coldbrew.live.records import TEXT
from coldbrew.live.versions import VersionInfo
from coldbrew.models.base import Recommender
from coldbrew.store import Item

log = logging.getLogger("coldbrew.serve")
_ALWAYS = (ITEM_ID, "title", TEXT)  # columns every item frame has


@dataclass(frozen=True)
class SavedModel:
    """A loaded saved model and what the service says about it."""

    model: Recommender
    info: VersionInfo
    fields: tuple[str, ...]
    """The item fields its parts read (their item templates' fields)."""
    name: str
    """``kind:directory``, for ``/meta`` and ``/metrics``."""
    encoder: str
    """The name of the encoder that reads its queries."""


def model_fields(model: Recommender) -> tuple[str, ...]:
    """The item fields the parts of ``model`` render into text."""
    return tuple(dict.fromkeys(model.item_fields()))


def query_encoder(model: Recommender) -> str | None:
    """The name of the encoder that reads queries for ``model`` (``None``: no text part)."""
    encoders = model.encoders()
    return str(encoders[0].name) if encoders else None


def warm(model: Recommender) -> None:
    """Load the encoders that read ``model``'s queries now, while the service starts, not on the
    first request: a fine-tuned model's sentence-transformer loads lazily, and its first text
    query took 17-34 s (serving --model on the shared 2-core machine, load average 10-14)."""
    for encoder in model.encoders():
        encoder.encode(["warm-up"])


def missing_fields(fields: Iterable[str], items: Iterable[Item]) -> list[str]:
    """Those of ``fields`` that none of ``items`` holds (as its description or an attribute)."""
    wanted = [f for f in fields if f not in _ALWAYS]
    held: set[str] = set()
    for item in items:
        held.update(item.attributes)
        if item.description:
            held.add("description")
        if held.issuperset(wanted):
            return []
    return [f for f in wanted if f not in held]


def load_saved(path: str, items: Iterable[Item], service_encoder: str) -> SavedModel:
    """The model saved in ``path``; warns of the fields it reads that ``items`` lack."""
    model = Recommender.load(path)
    warm(model)
    fields = model_fields(model)
    missing = missing_fields(fields, items)
    if missing:
        log.warning(
            "the model in %s was trained on the item fields %s; the stored items have no %s, "
            "so it reads them as empty (load the items with these fields: serve --data, or "
            "attributes of these names)",
            path,
            ", ".join(fields),
            ", ".join(missing),
        )
    name = Path(path).resolve().name
    info = VersionInfo(version=name, kind=model.kind)
    # an encoder saved inside the directory is named from it, not from the server's paths
    encoder = (query_encoder(model) or service_encoder).replace(str(Path(path)), name)
    return SavedModel(model, info, fields, f"{model.kind}:{name}", encoder)
