"""Per-script centring for the service: one liked Chinese item must not turn a mixed catalogue's
whole list Chinese (measured in benchmarks/README.md, "One liked Chinese item").

At start, a multilingual encoder over a catalogue that holds both scripts (five items each at
least) is wrapped in :class:`~coldbrew.text.centred.ScriptCentredEncoder`. The means are
computed once, from the items stored then, and kept in the store's model registry with the
wrapper's config, so later starts reuse them (and the vectors stored under that name) instead of
re-encoding the catalogue whenever it changes.
"""

from __future__ import annotations

import logging

import numpy as np

from coldbrew.serve.engine import item_text
from coldbrew.store import Store
from coldbrew.text.centred import MARK, ScriptCentredEncoder, centred_for
from coldbrew.text.encoder import Encoder
from coldbrew.text.language import reads_cjk

log = logging.getLogger("coldbrew.serve")


def centred_encoder(encoder: Encoder, store: Store) -> Encoder:
    """``encoder``, wrapped with the script means registered for it, else with those of the
    stored items when they mix scripts; unchanged for English-only encoders."""
    if MARK in encoder.name or not reads_cjk(encoder.name):
        return encoder
    prefix = f"{encoder.name}{MARK}"
    for version in reversed(store.model_versions()):
        if version["name"].startswith(prefix):
            means = np.asarray(version["config"]["means"], dtype=np.float32)
            return ScriptCentredEncoder(encoder, means)
    items = store.items()
    stored = store.vectors("item", encoder.name)
    vectors = None
    if items and all(i.item_id in stored for i in items):
        vectors = np.stack([stored[i.item_id] for i in items])
    chosen = centred_for(encoder, [item_text(i) for i in items], vectors)
    if chosen is not encoder:
        log.info("mixed scripts: item and query vectors are centred per script (%s)", chosen.name)
    return chosen
