"""Datasets: the schema, readers for generic folders and benchmark datasets, validation."""

from __future__ import annotations

from pathlib import Path

from coldbrew.data import benchmarks
from coldbrew.data.benchmarks import LOADERS, DatasetNotFoundError, data_root
from coldbrew.data.cleaning import OnBadRows, build_dataset
from coldbrew.data.folder import load_folder
from coldbrew.data.idmap import IdMap
from coldbrew.data.problems import DataError, LoadReport, RowProblem
from coldbrew.data.schema import ITEM_ID, TIMESTAMP, USER_ID, VALUE, Dataset, DatasetSpec

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample"
BENCHMARKS = tuple(LOADERS)


def load_dataset(
    name_or_path: str | Path,
    data_root: str | Path | None = None,
    on_bad_rows: OnBadRows = "raise",
) -> Dataset:
    """A benchmark dataset by name (``ml-100k``, ``ml-1m``, ``ml-latest-small``,
    ``citeulike-a``, ``online-retail``), ``"sample"`` for the bundled catalogue, or a dataset
    folder's path."""
    if isinstance(name_or_path, str) and name_or_path in LOADERS:
        return LOADERS[name_or_path](benchmarks.data_root(data_root))
    if str(name_or_path) == "sample":
        return sample_dataset()
    path = Path(name_or_path)
    if not path.exists():
        raise DatasetNotFoundError(
            f"{name_or_path!r} is neither a benchmark dataset ({', '.join(LOADERS)}) "
            "nor an existing dataset folder"
        )
    return load_folder(path, on_bad_rows=on_bad_rows)


def sample_dataset() -> Dataset:
    """The small bilingual catalogue bundled with the package (English and Chinese items)."""
    return load_folder(SAMPLE_DIR)


__all__ = [
    "BENCHMARKS",
    "ITEM_ID",
    "SAMPLE_DIR",
    "TIMESTAMP",
    "USER_ID",
    "VALUE",
    "DataError",
    "Dataset",
    "DatasetNotFoundError",
    "DatasetSpec",
    "IdMap",
    "LoadReport",
    "RowProblem",
    "build_dataset",
    "data_root",
    "load_dataset",
    "load_folder",
    "sample_dataset",
]
