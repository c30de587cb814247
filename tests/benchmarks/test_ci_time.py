"""``benchmarks/ci_time.py``: ``.ci/run`` of a fresh clone, timed, with pytest's own counts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ci_time.py"
sys.path.insert(0, str(SCRIPT.parent))

from ci_time import pytest_summary  # noqa: E402


def test_the_last_summary_line_gives_the_counts_and_seconds() -> None:
    log = (
        "==== 3 failed, 10 passed in 2.00s ====\n"  # an earlier run in the same log
        "SKIPPED [1] tests/x.py:3: needs a GPU\n"
        "== 2 failed, 1612 passed, 11 skipped, 1 error, 28 warnings in 871.68s (0:14:31) ==\n"
    )
    summary = pytest_summary(log)
    assert summary["counts"] == {"failed": 2, "passed": 1612, "skipped": 11, "error": 1}
    assert summary["pytest_seconds"] == 871.68
    assert pytest_summary("no tests ran, setup failed\n") == {}


def test_a_fresh_clone_of_the_commit_runs_its_ci_script(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    run = repo / ".ci" / "run"
    run.write_text('echo "CI=$CI"\necho "==== 4 passed, 1 skipped in 0.50s ===="\n')

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    run.write_text("exit 3\n")  # an uncommitted change the clone must not see
    clone, out = tmp_path / "clone", tmp_path / "ci.json"
    command = [sys.executable, str(SCRIPT), "--repo", str(repo), "--clone", str(clone),
               "--out", str(out)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
    report = json.loads(out.read_text())
    assert report["returncode"] == 0 and report["venv"] == "fresh"
    assert report["counts"] == {"passed": 4, "skipped": 1}
    assert report["pytest_seconds"] == 0.5 and report["wall_seconds"] > 0
    assert "CI=true" in (clone / "ci.log").read_text()
    assert len(report["commit"]) == 40 and "load_average" in report["provenance"]
