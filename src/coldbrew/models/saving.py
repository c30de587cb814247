"""The files of a saved model: ``config.json`` (its kind, parameters, user profiles) and
``arrays.npz`` (item ids, histories and what it learned; read without pickle).

:meth:`~coldbrew.models.base.Recommender.save` and :meth:`~coldbrew.models.base.Recommender.load`
decide what goes in; this module lays it out on disk and reads it back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1


def write_model_files(
    path: Path, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
) -> Path:
    """Write ``config`` (after the format version) and ``arrays`` into the directory ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(
        json.dumps(
            {"format_version": FORMAT_VERSION, **config},
            indent=2,
            ensure_ascii=False,
            default=_json_default,
        )
    )
    np.savez(path / "arrays.npz", **arrays)  # type: ignore[arg-type]
    return path


def read_config(path: Path) -> dict[str, Any]:
    """The ``config.json`` of the model saved in ``path``."""
    config_file = path / "config.json"
    if not config_file.exists():
        raise FileNotFoundError(f"no saved model at {path} (missing config.json)")
    config: dict[str, Any] = json.loads(config_file.read_text())
    return config


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of the model saved in ``path``, by name."""
    with np.load(path / "arrays.npz", allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def history_arrays(history: Mapping[str, list[str]]) -> dict[str, np.ndarray]:
    """Each user's history (item ids, oldest first) as three flat arrays."""
    users = sorted(history)
    lengths = np.asarray([len(history[u]) for u in users], dtype=np.int64)
    flat = [i for u in users for i in history[u]]
    return {
        "_history_users": np.asarray(users, dtype=str),
        "_history_lengths": lengths,
        "_history_items": np.asarray(flat, dtype=str),
    }


def pop_history(arrays: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """The histories :func:`history_arrays` wrote, taken out of ``arrays``."""
    users = arrays.pop("_history_users").tolist()
    lengths = arrays.pop("_history_lengths")
    flat = arrays.pop("_history_items").tolist()
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return {u: flat[bounds[i] : bounds[i + 1]] for i, u in enumerate(users)}


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"cannot save {type(value).__name__} in config.json")
