"""Hyperparameters of a training run, read from flags or a TOML file, in groups.

A config is written (``train.json``, checkpoints) in its grouped form,
``{"encoder": ..., "optimisation": {"max_steps": ...}, ...}``, and read back from that form,
from the flat one every field had before the groups (``{"max_steps": ...}``: runs saved then,
a ``[train]`` table of a TOML file, flags) or from any mix of the two.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from coldbrew.train.options import (
    Augmentation,
    DaptOptions,
    DataOptions,
    Distillation,
    LoraOptions,
    LossOptions,
    Optimisation,
    Validation,
)

GROUPS: dict[str, type] = {
    "data": DataOptions,
    "optimisation": Optimisation,
    "loss": LossOptions,
    "augmentation": Augmentation,
    "dapt": DaptOptions,
    "distillation": Distillation,
    "lora": LoraOptions,
    "validation": Validation,
}
"""Each group's name in a config and its class."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a fine-tuning run (with the data and the seed: its result).

    The options of one concern sit in a group (see each group's class for its fields); a
    field is read as ``config.optimisation.max_steps``.

    Parameters
    ----------
    encoder
        The starting model: ``default`` (the bundled MiniLM), ``multilingual`` (the bundled
        e5-small, converted to PyTorch once and cached) or a sentence-transformers path.
    method
        ``lora`` (adapters on attention, via ``peft``) or ``full`` (every weight).
    towers
        ``shared`` (one encoder reads the user side and the items) or ``separate`` (a copy of
        the starting encoder becomes the user tower and trains with its own weights; the model
        directory then holds ``user_encoder/`` too).
    seed
        Seed of everything random (split, pairs, batches, dropout).
    max_seq_length
        Tokens per text.
    data, optimisation, loss, augmentation, dapt, distillation, lora, validation
        The groups: :class:`~coldbrew.train.options.DataOptions`,
        :class:`~coldbrew.train.options.Optimisation`,
        :class:`~coldbrew.train.options.LossOptions`,
        :class:`~coldbrew.train.options.Augmentation`,
        :class:`~coldbrew.train.options.DaptOptions`,
        :class:`~coldbrew.train.options.Distillation`,
        :class:`~coldbrew.train.options.LoraOptions` and
        :class:`~coldbrew.train.options.Validation`.
    """

    encoder: str = "default"
    method: str = "lora"
    towers: str = "shared"
    seed: int = 42
    max_seq_length: int = 64
    data: DataOptions = field(default_factory=DataOptions)
    optimisation: Optimisation = field(default_factory=Optimisation)
    loss: LossOptions = field(default_factory=LossOptions)
    augmentation: Augmentation = field(default_factory=Augmentation)
    dapt: DaptOptions = field(default_factory=DaptOptions)
    distillation: Distillation = field(default_factory=Distillation)
    lora: LoraOptions = field(default_factory=LoraOptions)
    validation: Validation = field(default_factory=Validation)

    def __post_init__(self) -> None:
        if self.method not in ("lora", "full"):
            raise ValueError(f"method must be 'lora' or 'full', got {self.method!r}")
        if self.towers not in ("shared", "separate"):
            raise ValueError(f"towers must be shared or separate, got {self.towers!r}")

    def to_dict(self) -> dict[str, Any]:
        """The grouped form in plain JSON values (lists, not tuples), so a dict read back from
        JSON compares equal."""
        values = asdict(self)
        values["validation"]["val_k_values"] = list(self.validation.val_k_values)
        return values

    def with_values(self, **values: Any) -> TrainConfig:
        """This config with some fields changed, named flat (``max_steps=5``) or by group
        (``optimisation={"max_steps": 5}``)."""
        return TrainConfig.from_dict(_merge(self.to_dict(), _grouped(values)))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from its grouped form, the flat one or a mix; an unknown name is a
        ``ValueError`` listing the known ones."""
        grouped = _grouped(values)
        made = {name: GROUPS[name](**grouped.pop(name)) for name in GROUPS if name in grouped}
        return cls(**grouped, **made)

    @classmethod
    def from_toml(cls, path: str | Path) -> TrainConfig:
        data = tomllib.loads(Path(path).read_text())
        return cls.from_dict(data.get("train", data))


TOP_LEVEL = tuple(f.name for f in fields(TrainConfig) if f.name not in GROUPS)
"""The fields outside every group."""
GROUP_OF = {f.name: group for group, kind in GROUPS.items() for f in fields(kind)}
"""Each grouped field's flat name -> its group."""


def _grouped(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with every flat grouped field moved into its group's dict."""
    out: dict[str, Any] = {}
    unknown = []
    for name, value in values.items():
        if name in GROUPS:
            if not isinstance(value, dict):
                raise ValueError(f"{name} must be a table of its options, got {value!r}")
            _check_group(name, value)
            out.setdefault(name, {}).update(value)
        elif name in GROUP_OF:
            out.setdefault(GROUP_OF[name], {})[name] = value
        elif name in TOP_LEVEL:
            out[name] = value
        else:
            unknown.append(name)
    if unknown:
        known = sorted([*TOP_LEVEL, *GROUP_OF])
        raise ValueError(f"unknown training options {sorted(unknown)}; known: {known}")
    return out


def _check_group(group: str, values: dict[str, Any]) -> None:
    known = {f.name for f in fields(GROUPS[group])}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown training options {unknown} in {group}; known: {sorted(known)}")


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` (grouped) with ``changes`` (grouped) laid over it, group by group."""
    out = dict(base)
    for name, value in changes.items():
        out[name] = {**base[name], **value} if name in GROUPS else value
    return out
