"""Parameters declared once, by the constructor: get_params, the saved files, validation and
docs/models.md all follow from the signatures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coldbrew.models import Recommender, ZeroShotRecommender
from coldbrew.models.adapted import AdaptedZeroShotRecommender
from coldbrew.models.baselines import AttributePopularityRecommender
from coldbrew.models.cf import ALSRecommender, ItemKNNRecommender
from coldbrew.models.contextcf import ContextALSRecommender
from coldbrew.models.finetuned import FineTunedRecommender
from coldbrew.models.heads import AttributeMapRecommender, CFMapRecommender
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.lfm import LightFMRecommender
from coldbrew.models.params import constructor_arguments
from coldbrew.models.recipes import FACTORIES, ModelContext, make_model
from coldbrew.models.registry import parameter_table
from coldbrew.models.sequence import LinearTransitionRecommender, TransitionRecommender
from coldbrew.models.tfidf import TfidfRecommender
from coldbrew.text import HashingEncoder

FROZEN = Path(__file__).with_name("recipe_params.json")
"""Every recipe's params as the hand-written get_params gave them before they were derived
from the signatures (HashingEncoder(128), no cache, seed 42): a saved model's config.json."""
DOCS = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def test_every_recipe_saves_the_params_it_saved_before() -> None:
    frozen = json.loads(FROZEN.read_text())
    ctx = ModelContext(lambda: HashingEncoder(128), None, 42)
    assert set(frozen) == set(FACTORIES), "a new recipe: add its params to recipe_params.json"
    for name, expected in frozen.items():
        params = make_model(name, ctx).get_params()
        assert json.dumps(params) == json.dumps(expected), name


def test_run_settings_are_not_saved() -> None:
    model = ZeroShotRecommender(HashingEncoder(16), cache_dir="/tmp/x", show_progress=True)
    params = model.get_params()
    assert "cache_dir" not in params and "show_progress" not in params
    assert list(params)[:2] == ["encoder", "text_weight"]


def test_a_constructor_passing_kwargs_on_lists_its_parents_arguments_first() -> None:
    arguments = constructor_arguments(AttributeMapRecommender)
    names = list(arguments)
    assert names[: len(constructor_arguments(ZeroShotRecommender))] == list(
        constructor_arguments(ZeroShotRecommender)
    )
    assert names[-3:] == ["alpha", "use_attribute_text", "min_users"]
    assert arguments["attribute_weight"].default == 0.1  # its own default, not the parent's
    model = AttributeMapRecommender(HashingEncoder(16))
    assert model.get_params()["attribute_weight"] == 0.1


def test_components_are_saved_as_their_configs() -> None:
    model = CFMapRecommender(HashingEncoder(16), ALSRecommender(factors=4), alpha_grid=(1, 2))
    params = model.get_params()
    assert params["encoder"] == {"type": "hashing", "dim": 16}
    assert params["teacher"] == {"kind": "als", "params": ALSRecommender(factors=4).get_params()}
    assert params["text_model"] == ZeroShotRecommender(HashingEncoder(16)).get_params()
    assert params["lexical"] == TfidfRecommender().get_params()
    assert params["alpha_grid"] == [1.0, 2.0]


def test_a_fitted_adapted_model_saves_what_it_chose() -> None:
    model = AdaptedZeroShotRecommender(HashingEncoder(16), choices=("whitened",), epochs=3)
    model.chosen, model.validation = "whitened", {"whitened": 0.5}
    params = model.get_params()
    assert params["choices"] == ["whitened"] and params["epochs"] == 3
    assert params["fitted"] == {"chosen": "whitened", "validation": {"whitened": 0.5}}
    assert "mapping" not in params
    assert model.settings.epochs == 3


def test_a_model_rebuilt_from_its_params_has_the_same_params() -> None:
    models: list[Recommender] = [
        ItemKNNRecommender(neighbors=7, shrinkage=2.0),
        ContextALSRecommender(context_weight=0.5, factors=4),
        LightFMRecommender(text_fields=["title"], max_words_per_item=5),
        TfidfRecommender(attribute_fields=("genre",), recency_decay=0.5),
    ]
    for model in models:
        again = type(model)(**model.get_params())
        assert again.get_params() == model.get_params()


BAD: list[tuple[type[Recommender], dict[str, Any], str]] = [
    (AttributePopularityRecommender, {"smoothing": 0.0}, "smoothing"),
    (AttributePopularityRecommender, {"min_users": 0}, "min_users"),
    (ItemKNNRecommender, {"neighbors": 0}, "neighbors"),
    (TransitionRecommender, {"window": 0}, "window"),
    (LinearTransitionRecommender, {"window": 0}, "window"),
    (LinearTransitionRecommender, {"l2": 0.0}, "l2"),
    (LinearTransitionRecommender, {"keep": 0}, "keep"),
    (LinearTransitionRecommender, {"max_items": 0}, "max_items"),
    (TfidfRecommender, {"recency_decay": 0.0}, "recency_decay"),
    (LightFMRecommender, {"loss": "hinge"}, "loss"),
    (ALSRecommender, {"alpha": 0.5}, "fold_in_alpha"),
    (ContextALSRecommender, {"context_weight": -1.0}, "context_weight"),
    (HybridRecommender, {"parts": {}}, "parts"),
    (HybridRecommender, {"parts": {"a": ALSRecommender()}, "grid_step": 0.0}, "grid_step"),
    (HybridRecommender, {"parts": {"a": ALSRecommender()}, "max_parts": 0}, "max_parts"),
    (HybridRecommender, {"parts": {"a": ALSRecommender()}, "context_weights": [-1]}, "context"),
]
WITH_ENCODER: list[tuple[type[Recommender], dict[str, Any], str]] = [
    (ZeroShotRecommender, {"vector_dtype": "float64"}, "vector_dtype"),
    (ZeroShotRecommender, {"recency_decay": 2.0}, "recency_decay"),
    (AdaptedZeroShotRecommender, {"choices": ("mapped",)}, "choices"),
    (AttributeMapRecommender, {"min_users": 0}, "min_users"),
    (FineTunedRecommender, {"cache_dir": "/tmp/x"}, "cache_dir"),
    (CFMapRecommender, {"teacher": ALSRecommender(), "lexical_dims": -1}, "lexical_dims"),
    (CFMapRecommender, {"teacher": ALSRecommender(), "alpha_grid": (0.0,)}, "alpha_grid"),
]


@pytest.mark.parametrize(("cls", "kwargs", "name"), BAD)
def test_the_constructor_refuses_a_bad_value_naming_it(
    cls: type[Recommender], kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValueError, match=name):
        cls(**kwargs)


@pytest.mark.parametrize(("cls", "kwargs", "name"), WITH_ENCODER)
def test_a_text_model_refuses_a_bad_value_naming_it(
    cls: type[Recommender], kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValueError, match=name):
        cls(HashingEncoder(16), **kwargs)


def test_docs_list_every_models_arguments_with_their_defaults() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    assert docs.endswith(parameter_table()), (
        "docs/models.md is stale: regenerate its tables as it says"
    )
    assert "| `context_weights` | `(0.0,)` | yes |" in docs
    assert "| `show_progress` | `False` | no |" in docs
