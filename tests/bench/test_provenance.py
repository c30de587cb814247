"""The provenance block every benchmark report carries (issue 25)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coldbrew.bench.provenance import begin, command_line, provenance, stamped

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
# Scripts whose json.dumps builds request bodies or caches, or that hand their report to
# liveserver.save_report (which stamps it): none of them writes a report of its own.
NOT_REPORTS = {"abuse.py", "liveserver.py", "pgvector_probe.py", "readme.py", "replicas.py"}
NOT_REPORTS |= {"replay_service.py"}


def test_the_block_names_this_checkouts_commit_the_command_and_the_machine() -> None:
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    block = provenance(begin())
    assert block["commit"] == head
    assert isinstance(block["dirty"], bool)
    assert block["machine"]["cpu_count"] == os.cpu_count()
    assert len(block["load_average"]["start"]) == len(block["load_average"]["end"]) == 3
    assert block["started"] <= block["finished"]
    assert block["started"].endswith("+00:00")


def test_a_script_is_recorded_as_the_python_command_that_ran_it() -> None:
    argv = ["benchmarks/load.py", "--items", "100", "--note", "two words"]
    assert command_line(argv) == "python benchmarks/load.py --items 100 --note 'two words'"
    assert command_line(["coldbrew", "bench"]) == "coldbrew bench"


def test_a_child_process_records_its_own_command_and_the_commit() -> None:
    code = (
        "from coldbrew.bench.provenance import stamped; import json; print(json.dumps(stamped({})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "--seed", "7"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    block = json.loads(done.stdout)["provenance"]
    assert block["command"] == "-c --seed 7"
    assert block["commit"] is not None


def test_stamping_keeps_the_report_and_refuses_a_second_block() -> None:
    report = {"figure": 1.5}
    out = stamped(report)
    assert out["figure"] == 1.5 and "provenance" in out and "provenance" not in report
    with pytest.raises(ValueError, match="already has a provenance"):
        stamped(out)


def _calls(path: Path, name: str) -> bool:
    tree = ast.parse(path.read_text())
    return any(
        isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", "")) == name
        for node in ast.walk(tree)
    )


def test_every_benchmark_script_that_writes_json_stamps_it() -> None:
    writers = [p for p in sorted(BENCHMARKS.glob("*.py")) if _calls(p, "dumps")]
    assert len(writers) > 20
    unstamped = [p.name for p in writers if p.name not in NOT_REPORTS and not _calls(p, "stamped")]
    assert not unstamped, f"benchmark scripts writing JSON without provenance: {unstamped}"
    assert _calls(BENCHMARKS / "liveserver.py", "stamped")
