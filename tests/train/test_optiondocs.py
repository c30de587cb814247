"""Each training option's text is read from its declaration (coldbrew.train.optiondocs)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import pytest

from coldbrew.train.config import GROUP_OF, GROUPS, TOP_LEVEL, TrainConfig
from coldbrew.train.optiondocs import option_help, option_type, parameter_docs


def test_every_training_option_is_described_where_it_is_declared() -> None:
    for cls in (TrainConfig, *GROUPS.values()):
        assert set(parameter_docs(cls)) == {f.name for f in fields(cls)}, cls.__name__
    for name in (*TOP_LEVEL, *GROUP_OF):
        assert option_help(name).strip(), name


@dataclass
class _Documented:
    """A class documented the numpydoc way.

    Parameters
    ----------
    alpha, beta
        Shared by two, with ``markup`` and
        :class:`~coldbrew.train.config.TrainConfig`, 100% of it.
    gamma
        Its own.

    Notes
    -----
    Not a parameter.
    """

    alpha: int = 1
    beta: float = 0.5
    gamma: str = "x"


def test_an_entry_naming_several_fields_gives_each_its_text_and_sections_end_it() -> None:
    docs = parameter_docs(_Documented)
    shared = (
        "Shared by two, with ``markup`` and :class:`~coldbrew.train.config.TrainConfig`, "
        "100% of it."
    )
    assert docs == {"alpha": shared, "beta": shared, "gamma": "Its own."}


def test_a_flag_shows_the_text_without_markup_and_the_declared_type() -> None:
    assert option_help("lora_alpha") == "Scaling numerator and dropout of each adapter."
    assert option_help("max_steps") == "Optimisation steps."
    assert "``" not in option_help("encoder") and "default (the bundled MiniLM)" in option_help(
        "encoder"
    )
    assert (option_type("max_steps"), option_type("learning_rate")) == (int, float)
    assert (option_type("encoder"), option_type("augment")) == (str, bool)


def test_an_unknown_option_or_an_undocumented_class_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no training option"):
        option_help("nope")
    with pytest.raises(ValueError, match="not a plain value"):
        option_type("val_k_values")

    @dataclass
    class Bare:
        """No parameters here."""

    with pytest.raises(ValueError, match="no Parameters section"):
        parameter_docs(Bare)
