"""Readable scores: the percentile of a score among the catalogue's scores for that query."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from coldbrew.cli.main import main
from coldbrew.data import SAMPLE_DIR
from coldbrew.eval.calibration import score_percentiles


def test_percentiles_count_the_other_items_below() -> None:
    catalogue = np.array([0.1, 0.5, 0.9, 0.7, -np.inf], dtype=np.float32)
    got = score_percentiles(catalogue, catalogue[[2, 3, 1, 0]])
    np.testing.assert_allclose(got, [100.0, 200 / 3, 100 / 3, 0.0])
    tied = score_percentiles(np.array([0.5, 0.5, 0.1]), np.array([0.5]))
    np.testing.assert_allclose(tied, [75.0])  # one other below, one tie counting half
    assert score_percentiles(np.array([0.3]), np.array([0.3])).tolist() == [100.0]


def test_recommend_shows_relevance_beside_the_cosine(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = [
        "recommend", "--data", str(SAMPLE_DIR), "--encoder", "hashing",
        "--cache-dir", str(tmp_path), "--text", "lightweight spring jacket", "-k", "5",
    ]  # fmt: skip
    assert main([*args, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    relevance = [row["relevance"] for row in rows]
    assert relevance[0] == 100.0
    assert relevance == sorted(relevance, reverse=True) and relevance[-1] > 80
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "relevance" in table and "100.0%" in table
