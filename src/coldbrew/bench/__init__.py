"""The benchmark: every model on every protocol, same splits, one run (see ``coldbrew bench``)."""

from coldbrew.bench.runner import BenchConfig, ResultRow, run_benchmark
from coldbrew.models.recipes import MODEL_NAMES, make_model

__all__ = ["MODEL_NAMES", "BenchConfig", "ResultRow", "make_model", "run_benchmark"]
