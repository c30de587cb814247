"""``benchmarks/bench_runtimes.py``: runtimes in turns, each bench with its own empty cache, and
a summary that compares their time and their NDCG@20 (hashing encoder, bundled sample)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_runtimes.py"


def test_each_runtime_runs_in_turns_and_the_summary_compares_them(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    command = [sys.executable, str(SCRIPT), "--dataset", "sample", "--encoder", "hashing",
               "--models", "zeroshot,popularity", "--runtimes", "torch,auto", "--turns", "1",
               "--out", str(out)]  # fmt: skip
    env = {**os.environ, "COLDBREW_CACHE": str(tmp_path / "coldbrew-cache")}
    subprocess.run(command, check=True, capture_output=True, text=True, env=env, timeout=300)
    report = json.loads(out.read_text())
    assert [(r["turn"], r["runtime"]) for r in report["runs"]] == [(1, "torch"), (1, "auto")]
    for run in report["runs"]:
        assert run["wall_s"] > 0 and run["cpu_s"] > 0
        assert {row["model"] for row in run["rows"]} == {"zeroshot", "popularity"}
    summary = report["summary"]
    assert summary["torch"]["runs"] == summary["auto"]["runs"] == 1
    assert summary["ratio"]["pair"] == "torch / auto" and summary["ratio"]["cpu"] > 0
    assert summary["ndcg@20_equal_to_3_decimals"] is True  # the hashing encoder runs as it is
    assert len(summary["ndcg@20"]["torch"]) == 2
    assert report["provenance"]["command"].startswith("python ")
