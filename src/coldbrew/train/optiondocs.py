"""Each training option's text and type, read from where the option is declared.

The options are documented once, in the numpydoc ``Parameters`` of
:class:`~coldbrew.train.config.TrainConfig` and of its groups (:mod:`coldbrew.train.options`);
``coldbrew train --help`` shows that text, so the two cannot drift apart.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import fields

from coldbrew.train.config import GROUP_OF, GROUPS, TOP_LEVEL, TrainConfig

_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}


def parameter_docs(cls: type) -> dict[str, str]:
    """Each name in ``cls``'s numpydoc ``Parameters`` section and its description on one line
    (an entry naming several, ``a, b``, gives each the same text).

    Parameters
    ----------
    cls
        A class whose docstring has a ``Parameters`` section.

    Returns
    -------
    dict of str to str
        Name -> description, whitespace collapsed, markup kept.
    """
    text = inspect.cleandoc(cls.__doc__ or "")
    _, found, rest = text.partition("Parameters\n----------\n")
    if not found:
        raise ValueError(f"{cls.__name__}'s docstring has no Parameters section")
    rest = re.split(r"\n(?=\S[^\n]*\n-+\n)", rest)[0]
    docs: dict[str, list[str]] = {}
    names: list[str] = []
    for line in rest.splitlines():
        if line and not line[0].isspace():
            names = [name.strip() for name in line.split(",")]
            docs.update({name: [] for name in names})
        elif line.strip():
            for name in names:
                docs[name].append(line.strip())
    return {name: " ".join(words) for name, words in docs.items()}


def _declaring_class(name: str) -> type:
    if name in GROUP_OF:
        return GROUPS[GROUP_OF[name]]
    if name in TOP_LEVEL:
        return TrainConfig
    raise ValueError(f"{name!r} is no training option")


def option_help(name: str) -> str:
    """The text a flag shows for the :class:`TrainConfig` field ``name`` (flat name): its
    declared description without reST markup, ``%`` escaped for argparse."""
    text = parameter_docs(_declaring_class(name)).get(name, "")
    if not text:
        raise ValueError(f"training option {name!r} has no description where it is declared")
    text = re.sub(r":\w+:`~?(?:[\w.]+\.)?(\w+)`", r"\1", text)
    return re.sub(r"``([^`]+)``", r"\1", text).replace("%", "%%")


def option_type(name: str) -> type:
    """The Python type the :class:`TrainConfig` field ``name`` (flat name) declares."""
    declared = str({f.name: f.type for f in fields(_declaring_class(name))}[name])
    if declared not in _TYPES:
        raise ValueError(f"training option {name!r} is a {declared}, not a plain value")
    return _TYPES[declared]
