"""Which encoder the service runs, from the items stored at start (issue 14).

:func:`serving_encoder`: with ``auto``, the language of the stored items picks the bundled
encoder (multilingual for Chinese or mixed items, MiniLM for English or an empty database).

:func:`centred_encoder`: one liked Chinese item must not turn a mixed catalogue's whole list
Chinese (measured in benchmarks/notes/2026-11-30-chinese.md, "One liked Chinese item"). At
start, a multilingual encoder over a catalogue that holds both scripts (five items each at
least) is wrapped in :class:`~coldbrew.text.centred.ScriptCentredEncoder`. The means are
computed once, from the items stored then, and kept in the store's model registry with the
wrapper's config, so later starts reuse them (and the vectors stored under that name) instead of
re-encoding the catalogue whenever it changes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from coldbrew.live.records import item_text
from coldbrew.store import Store
from coldbrew.text.centred import MARK, ScriptCentredEncoder, centred_for
from coldbrew.text.encoder import Encoder
from coldbrew.text.language import AUTO, detect_language, encoder_for, reads_cjk

log = logging.getLogger("coldbrew.serve")


def serving_encoder(spec: str, store: Store) -> str:
    """``spec``, or for ``auto`` the encoder for the language of the items stored at start."""
    if spec != AUTO:
        return spec
    language = detect_language(f"{i.title} {i.description}" for i in store.items())
    chosen = encoder_for(spec, language)
    log.info("encoder %s for the stored items' language (%s)", chosen, language)
    return chosen


def centred_encoder(encoder: Encoder, store: Store, incoming: Sequence[str] = ()) -> Encoder:
    """``encoder``, wrapped with the script means registered for it, else with those of the
    stored items (and the ``incoming`` item texts an import is about to store) when they mix
    scripts; unchanged for English-only encoders."""
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
    if items and all(i.item_id in stored for i in items) and not incoming:
        vectors = np.stack([stored[i.item_id] for i in items])
    chosen = centred_for(encoder, [*(item_text(i) for i in items), *incoming], vectors)
    if chosen is not encoder:
        log.info("mixed scripts: item and query vectors are centred per script (%s)", chosen.name)
    return chosen
