"""A model's hyperparameters, declared once: by its constructor's signature (scikit-learn's
convention).

:meth:`~coldbrew.models.base.Recommender.get_params` reads each constructor argument back from
the attribute of the same name, turned into JSON-able values (:func:`jsonable`);
:func:`argument_rows` lists them with their defaults for ``docs/models.md``
(:func:`~coldbrew.models.registry.parameter_table`). A constructor that takes ``**kwargs``
passes them on to its parent's, whose arguments come first. Arguments a class names in
``runtime_arguments`` (a cache folder, a progress bar) say how a run goes, not what is
learned: they are left out of the parameters and the saved files.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import fields, is_dataclass
from typing import Any, Protocol, runtime_checkable

from coldbrew.text.encoder import Encoder

_PASSED_ON = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)


@runtime_checkable
class Component(Protocol):
    """A model held by another (a hybrid's part, a teacher): saved as its kind and params."""

    kind: str

    def get_params(self) -> dict[str, Any]: ...


def constructor_arguments(cls: type) -> dict[str, inspect.Parameter]:
    """The named arguments of ``cls``'s constructor, in order; those its ``**kwargs`` pass on
    to the parent's constructor come first, where the parent declares them."""
    own = dict(inspect.signature(cls).parameters)
    passes_on = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in own.values())
    named = {n: p for n, p in own.items() if p.kind not in _PASSED_ON}
    if not passes_on:
        return named
    parent = next(base for base in cls.__mro__[1:] if "__init__" in vars(base))
    return {**constructor_arguments(parent), **named}


def param_names(cls: type, runtime: Iterable[str]) -> tuple[str, ...]:
    """The hyperparameters of ``cls``: its constructor arguments less the ``runtime`` ones."""
    skip = set(runtime)
    return tuple(n for n in constructor_arguments(cls) if n not in skip)


def params_of(model: object, runtime: Iterable[str]) -> dict[str, Any]:
    """``model``'s hyperparameters read from its attributes of the same names, JSON-able."""
    return {name: jsonable(getattr(model, name)) for name in param_names(type(model), runtime)}


def jsonable(value: Any) -> Any:
    """``value`` as JSON-able values: a model as its kind and params, an encoder as its config,
    a dataclass (a template) as its fields, tuples as lists; mappings item by item."""
    if isinstance(value, Component):
        return {"kind": value.kind, "params": value.get_params()}
    if isinstance(value, Encoder):
        return value.config()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    return value


def argument_rows(cls: type, runtime: Iterable[str]) -> list[str]:
    """Markdown table rows, one per constructor argument of ``cls``: its name, its default and
    whether it is saved (the ``runtime`` ones are not)."""
    skip = set(runtime)
    return [
        f"| `{name}` | {_default(arg)} | {'no' if name in skip else 'yes'} |"
        for name, arg in constructor_arguments(cls).items()
    ]


def _default(arg: inspect.Parameter) -> str:
    if arg.default is inspect.Parameter.empty:
        return "required"
    return f"`{arg.default!r}`"
