"""``benchmarks/blend_parts.py``: the never-below-a-part rule of issue 24 read from bench
reports, one rule for every cell (NDCG@20, and next item's Recall@10 and NDCG@10)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "blend_parts.py"


@pytest.fixture(scope="module")
def parts() -> ModuleType:
    sys.path.insert(0, str(SCRIPT.parent))
    return importlib.import_module("blend_parts")


def row(
    model: str,
    ndcg: float,
    half: float = 0.01,
    protocol: str = "cold-item",
    k: int | None = None,
    recall10: float | None = None,
    blend: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    metrics = {"ndcg@20": ndcg}
    intervals = {}
    if recall10 is not None:
        metrics |= {"recall@10": recall10, "ndcg@10": ndcg}
        intervals = {
            "recall@10": [recall10 - half, recall10 + half],
            "ndcg@10": [ndcg - half, ndcg + half],
        }
    return {
        "dataset": "toy",
        "protocol": protocol,
        "k": k,
        "seed": 42,
        "model": model,
        "params": {},
        "metrics": metrics,
        "ndcg20_ci95": [ndcg - half, ndcg + half],
        "users": 100,
        "left_out_users": 0,
        "fallback_users": None,
        "candidates": 10,
        "candidates_without_signal": None,
        "fit_seconds": 1.0,
        "encode_texts_per_s": None,
        "latency_ms_p50": 1.0,
        "latency_ms_p99": 1.0,
        "peak_rss_mb": 1.0,
        "intervals": intervals,
        "blend": blend,
    }


def write(path: Path, rows: list[dict[str, Any]], commit: str = "abcdef0123") -> Path:
    path.write_text(json.dumps({"meta": {"provenance": {"commit": commit}}, "results": rows}))
    return path


def test_a_cell_is_below_only_beyond_the_best_parts_half_width(
    parts: ModuleType, tmp_path: Path
) -> None:
    blend = [
        {"weights": {"cf_map": 1.0}, "test_users": 70},
        {"weights": {"popularity": 1.0}, "test_users": 1},
        {"weights": {"cf_map": 1.0}, "test_users": 29},
    ]
    report = write(
        tmp_path / "a.json",
        [
            row("hybrid", 0.195, blend=blend),  # within cf_map's half-width (0.01)
            row("cf_map", 0.2),
            row("tfidf", 0.1),
            row("popularity", 0.05),
            row("hybrid", 0.30, protocol="warm"),  # beyond itemknn's half-width
            row("itemknn", 0.32, protocol="warm"),
            row("popularity", 0.31, half=0.03, protocol="warm"),  # within its wide interval
            row("zeroshot", 0.9, protocol="warm"),  # not a part: never compared
        ],
    )
    cells = parts.grid_cells(parts.load([report]))
    by = {c["protocol"]: c for c in cells}
    assert by["cold-item"]["below"] == {}
    assert by["cold-item"]["best_part"] == "cf_map"
    assert by["cold-item"]["weights"] == "cf_map 1 (99); popularity 1 (1)"
    assert by["warm"]["below"] == {"itemknn": ["ndcg@20"]}
    assert by["warm"]["best_part"] == "itemknn"
    assert "linear_transitions" in by["warm"]["parts_missing"]
    assert by["warm"]["hybrid_commit"] == "abcdef0"


def test_next_item_is_judged_on_its_own_metrics_too(parts: ModuleType, tmp_path: Path) -> None:
    report = write(
        tmp_path / "n.json",
        [
            row("hybrid", 0.10, protocol="next-item", recall10=0.20),
            row("linear_transitions", 0.10, protocol="next-item", recall10=0.25),
        ],
    )
    (cell,) = parts.grid_cells(parts.load([report]))
    assert cell["below"] == {"linear_transitions": ["recall@10"]}
    assert "R@10 0.2000" in parts.grid_table([cell])


def test_a_later_report_replaces_an_earlier_row_of_the_same_cell(
    parts: ModuleType, tmp_path: Path
) -> None:
    old = write(tmp_path / "old.json", [row("hybrid", 0.1), row("cf_map", 0.2)], "1111111")
    new = write(tmp_path / "new.json", [row("hybrid", 0.2)], "2222222")
    (before,) = parts.grid_cells(parts.load([old]))
    (cell,) = parts.grid_cells(parts.load([old, new]))
    assert before["below"] == {"cf_map": ["ndcg@20"]}
    assert cell["below"] == {}
    assert cell["hybrid_commit"] == "2222222" and cell["part_commits"] == ["1111111"]
    assert parts.grid_cells(parts.load([new])) == []  # a hybrid with no part is no cell
    # an older report read for its parts only: its hybrid never stands for today's
    assert parts.grid_cells(parts.load([], parts_from=[old])) == []
    (mixed,) = parts.grid_cells(parts.load([new], parts_from=[old]))
    assert mixed["hybrid_report"] == str(new) and mixed["best_part"] == "cf_map"
    assert not mixed["hybrid_stale"]
    (marked,) = parts.grid_cells(parts.load([], stale=[old]))
    assert marked["hybrid_stale"] and "1111111 (stale)" in parts.grid_table([marked])
