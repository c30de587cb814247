"""Which language a catalogue is in, which bundled encoder reads it, and queries it cannot read.

A text counts as CJK (Chinese, Japanese, Korean) when at least a third of its letters are CJK
characters. A catalogue is ``"zh"`` when most of its item texts are CJK, ``"multi"`` when a
noticeable share is, else ``"en"``. ``dataset.toml``'s ``language`` wins over detection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from coldbrew.data.schema import Dataset
from coldbrew.text.encoder import l2_normalize

AUTO = "auto"
CJK_TEXT_SHARE = 1 / 3
ZH_CATALOGUE_SHARE = 0.8
MULTI_CATALOGUE_SHARE = 0.05
MIN_GROUP = 5
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# sentence-transformers models trained on English only: they tokenise CJK but do not read it
_ENGLISH_ONLY = re.compile(
    r"all-minilm|all-mpnet|all-distilroberta|multi-qa-|msmarco|bge-(small|base|large)-en|"
    r"^gte-(small|base|large)$|^e5-(small|base|large)(-v2)?$|nomic-embed-text-v1",
    re.IGNORECASE,
)


def cjk_share(text: str) -> float:
    """Share of the letters in ``text`` that are CJK characters (0 for a text without letters)."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for ch in letters if _CJK.match(ch)) / len(letters)


def is_cjk(text: str) -> bool:
    """Whether ``text`` is mostly written in a CJK script."""
    return cjk_share(text) >= CJK_TEXT_SHARE


def detect_language(texts: Iterable[str]) -> str:
    """``"zh"``, ``"multi"`` or ``"en"`` from the share of CJK texts among ``texts``."""
    flags = [is_cjk(t) for t in texts if t and t.strip()]
    if not flags:
        return "en"
    share = sum(flags) / len(flags)
    if share >= ZH_CATALOGUE_SHARE:
        return "zh"
    return "multi" if share >= MULTI_CATALOGUE_SHARE else "en"


def resolve_language(declared: str | None, texts: Iterable[str]) -> str:
    """The declared language when there is one (not empty, not ``"auto"``), else detected."""
    if declared and declared != AUTO:
        return declared
    return detect_language(texts)


def catalogue_language(dataset: Dataset) -> str:
    """The dataset's declared language, else the one detected from its items' text columns."""
    columns = [c for c in dataset.spec.item_text if c in dataset.items]
    texts = (
        " ".join(str(v) for v in row if isinstance(v, str))
        for row in dataset.items[columns].itertuples(index=False)
    )
    return resolve_language(dataset.spec.language, texts)


def encoder_for(spec: str, language: str) -> str:
    """``spec`` unless it is ``"auto"``: then the bundled model that reads ``language``
    (MiniLM for English, multilingual-e5-small for anything else)."""
    if spec != AUTO:
        return spec
    return "default" if language == "en" else "multilingual"


def reads_cjk(encoder_name: str) -> bool:
    """Whether the encoder of this :attr:`Encoder.name` was trained on CJK text (known
    English-only models say no; unknown ones are given the benefit of the doubt)."""
    model = encoder_name.split(":", 1)[-1].split("@", 1)[0].rstrip("/")  # openai:MODEL@URL
    return not _ENGLISH_ONLY.search(model.rsplit("/", 1)[-1])


def script_warnings(encoder_name: str, texts: Sequence[str | None]) -> list[str]:
    """A warning for each CJK text the encoder named ``encoder_name`` cannot read."""
    if reads_cjk(encoder_name):
        return []
    return [
        f"the text {text[:40]!r} is Chinese/Japanese/Korean, but the encoder {encoder_name} "
        "reads English only: use the multilingual encoder (--encoder multilingual, "
        "COLDBREW_ENCODER=multilingual)"
        for text in texts
        if text and is_cjk(text)
    ]


def script_groups(texts: Sequence[str]) -> np.ndarray:
    """One group per text: 1 for CJK texts, 0 for the rest."""
    return np.fromiter((is_cjk(t) for t in texts), dtype=np.int64, count=len(texts))


def group_means(vectors: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The mean vector of each script group, shape ``(2, dim)``; empty ``(0, dim)`` unless both
    groups hold at least :data:`MIN_GROUP` rows (one script: nothing to centre)."""
    counts = np.bincount(groups, minlength=2)
    if len(counts) != 2 or counts.min() < MIN_GROUP:
        return np.zeros((0, vectors.shape[1]), dtype=np.float32)
    return np.stack([vectors[groups == g].mean(axis=0) for g in (0, 1)]).astype(np.float32)


def centre_by_script(vectors: np.ndarray, texts: Sequence[str], means: np.ndarray) -> np.ndarray:
    """``vectors`` less the mean of their text's script group, re-normalised.

    Multilingual encoders put a shared "this is Chinese" direction in every Chinese vector, so in
    a mixed catalogue one liked Chinese item pulls every Chinese item up. Removing each script's
    mean keeps what the text is about and drops which script it is written in. With no
    ``means`` (a one-script catalogue) the vectors come back unchanged.
    """
    if not len(means) or not len(vectors):
        return vectors
    centred: np.ndarray = l2_normalize(vectors - means[script_groups(texts)])
    return centred
