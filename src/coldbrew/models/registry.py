"""Every built-in model, by the kind it saves as: an explicit table, no import-by-string.

Imported with :mod:`coldbrew.models`, so each built-in class is defined (and so known to
:meth:`~coldbrew.models.base.Recommender.load`) before any model is loaded.
"""

from __future__ import annotations

from coldbrew.models.adapted import AdaptedZeroShotRecommender
from coldbrew.models.base import Recommender
from coldbrew.models.baselines import (
    AttributePopularityRecommender,
    PopularityRecommender,
    RandomRecommender,
)
from coldbrew.models.candidates import CandidateRecommender
from coldbrew.models.cf import ALSRecommender, BPRRecommender, ItemKNNRecommender
from coldbrew.models.contextcf import ContextALSRecommender
from coldbrew.models.contextual import ContextPopularityRecommender
from coldbrew.models.finetuned import FineTunedRecommender
from coldbrew.models.heads import AttributeMapRecommender, CFMapRecommender
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.lfm import LightFMRecommender
from coldbrew.models.params import argument_rows
from coldbrew.models.sasrec import SASRecRecommender
from coldbrew.models.sequence import LinearTransitionRecommender, TransitionRecommender
from coldbrew.models.tfidf import TfidfRecommender
from coldbrew.models.zeroshot import ZeroShotRecommender

BUILT_IN: tuple[type[Recommender], ...] = (
    PopularityRecommender,
    AttributePopularityRecommender,
    ContextPopularityRecommender,
    RandomRecommender,
    ZeroShotRecommender,
    AdaptedZeroShotRecommender,
    ALSRecommender,
    ContextALSRecommender,
    BPRRecommender,
    ItemKNNRecommender,
    TransitionRecommender,
    LinearTransitionRecommender,
    SASRecRecommender,
    TfidfRecommender,
    LightFMRecommender,
    AttributeMapRecommender,
    CFMapRecommender,
    FineTunedRecommender,
    HybridRecommender,
    CandidateRecommender,
)


def model_classes() -> dict[str, type[Recommender]]:
    """Kind -> class of every built-in model."""
    return {cls.kind: cls for cls in BUILT_IN}


def parameter_table() -> str:
    """Markdown, one table per built-in model: its constructor arguments, their defaults and
    whether they are saved; what ``docs/models.md`` lists (a test holds it to this)."""
    sections = []
    for cls in BUILT_IN:
        head = f"### `{cls.kind}` ({cls.__name__})\n\n| argument | default | saved |\n|---|---|---|"
        sections.append("\n".join([head, *argument_rows(cls, cls.runtime_arguments)]))
    return "\n\n".join(sections) + "\n"
