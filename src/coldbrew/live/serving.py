"""What the engine serves and how it keeps it fresh (:class:`Serving`), each knob declared once.

A knob is a dataclass field made by :func:`knob`: its name, type (the annotation), default and
help sit on the field, with the environment variable that sets it in the service (``COLDBREW_``
and the name in capitals, unless given), the ``coldbrew serve`` flag (if any) and the rule its
value must keep. :class:`~coldbrew.config.settings.Settings` reads :class:`Serving`'s knobs and
its own from the environment by these declarations, ``coldbrew serve`` makes its flags from them
and docs/service.md's settings table is generated from them (and checked by a test).
"""

from __future__ import annotations

from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Knob:
    """How a setting is given and checked, beside its field's name, type and default.

    ``env``: its environment variable (``None``: ``COLDBREW_`` and the field's name in
    capitals); ``flag``: its ``coldbrew serve`` option (``None``: the environment only);
    ``choices``: the values allowed; ``above`` / ``at_least``: the bound its value must pass;
    ``metavar``: the flag's placeholder; ``doc_default``: the default as the docs show it."""

    help: str
    env: str | None = None
    flag: str | None = None
    choices: tuple[str, ...] | None = None
    above: float | None = None
    at_least: float | None = None
    metavar: str | None = None
    doc_default: str | None = None


def knob(default: Any, help: str, **more: Any) -> Any:
    """A dataclass field declaring a setting: its default, its help and :class:`Knob`'s rest."""
    declared = Knob(help=help, **more)
    if isinstance(default, frozenset):
        return field(default_factory=frozenset, metadata={"knob": declared})
    return field(default=default, metadata={"knob": declared})


@dataclass(frozen=True)
class Declared:
    """One declared setting: a field's name and default with its :class:`Knob`."""

    name: str
    default: Any
    knob: Knob

    @property
    def env(self) -> str:
        return self.knob.env or f"COLDBREW_{self.name.upper()}"


def declared(cls: type) -> list[Declared]:
    """The settings a dataclass ``cls`` declares with :func:`knob`, in field order."""
    return [
        Declared(f.name, _default(f), f.metadata["knob"])
        for f in fields(cls)
        if "knob" in f.metadata
    ]


def _default(f: Field[Any]) -> Any:
    factory = f.default_factory
    return factory() if f.default is MISSING and callable(factory) else f.default


def check_declared(values: object) -> None:
    """Raise ``ValueError`` naming the environment variable of the first of ``values``'s
    settings outside its declared choices or bounds."""
    for setting in declared(type(values)):
        value, rule = getattr(values, setting.name), setting.knob
        if rule.choices is not None and value not in rule.choices:
            raise ValueError(f"{setting.env}={value!r}: choose one of {', '.join(rule.choices)}")
        if rule.above is not None and not value > rule.above:
            raise ValueError(f"{setting.env}={value!r}: must be > {rule.above:g}")
        if rule.at_least is not None and value < rule.at_least:
            raise ValueError(f"{setting.env}={value!r}: must be >= {rule.at_least:g}")


@dataclass(frozen=True)
class Serving:
    """What the engine serves and how it keeps it fresh; each field's help is its declaration.

    Built in code for an engine in a script, a test or a benchmark, or by the service from its
    settings (:meth:`~coldbrew.config.settings.Settings.engine_serving`)."""

    model: str = knob(
        "hybrid",
        "hybrid (the service learns its own from the interactions it receives and refits it in "
        "the background; before that, the language model answers), zeroshot (the language "
        "model alone, never refitted), or a saved model directory (served as is)",
        flag="--model",
        metavar="NAME|DIR",
    )
    models_dir: str | None = knob(
        None,
        "where model versions are kept",
        flag="--models-dir",
        metavar="DIR",
        doc_default="beside a SQLite file, DB.models; else .coldbrew/models/ and a hash of the "
        "database URL",
    )
    refit_every: int = knob(
        1000,
        "refit after N new interactions; 0: never",
        flag="--refit-every",
        metavar="N",
        at_least=0,
    )
    refit_minutes: float = knob(
        60.0,
        "refit T minutes after the last one if interactions arrived since; 0: never",
        flag="--refit-minutes",
        metavar="T",
        at_least=0,
    )
    refit_min_interactions: int = knob(
        50,
        "no refit before this many positive events",
        flag="--refit-min-interactions",
        metavar="N",
        at_least=0,
    )
    score_all_below: int = knob(
        50_000,
        "catalogues this large or larger are not scored whole: each part proposes "
        "candidates and only those are scored",
        flag="--score-all-below",
        metavar="N",
        at_least=0,
    )
    candidates: int = knob(
        200,
        "how many candidates the model's parts, and the language model through the item index, "
        "are asked for in a catalogue of score_all_below items or more",
        flag="--candidates",
        metavar="N",
        above=0,
    )
    ray: str | None = knob(
        None,
        "run the background refits as Ray tasks, and encode bulk item batches (256 texts or "
        "more) with Ray Data, on this cluster: auto (the cluster in RAY_ADDRESS or started "
        "with `ray start` here, else a new local one), local (a new local one) or HOST:PORT / "
        "ray://HOST:PORT; needs the [ray] extra",
        flag="--ray",
        metavar="auto|local|ADDRESS",
        doc_default="none: a child process of the service",
    )
    write_chunk: int = knob(
        32,
        "a write's item texts are encoded at most this many at a time (fewer, where a piece "
        "would hold the encoder over about 50 ms), and put in the index and the served model "
        "this many at a time; users' words waiting for the encoder, and searches waiting for "
        "the index, go first between pieces (with ray: encoded all at once, on the cluster)",
        flag="--write-chunk",
        metavar="N",
        above=0,
    )

    def __post_init__(self) -> None:
        check_declared(self)
