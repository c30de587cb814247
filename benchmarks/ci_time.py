"""How long CI takes: ``.ci/run`` on a fresh clone of a commit, timed, with pytest's counts.

    OPENBLAS_NUM_THREADS=1 COLDBREW_DATA=/work/shared/data python benchmarks/ci_time.py \
        --repo . --commit HEAD --clone /tmp/ci-clone --out benchmarks/results/ci/ci-COMMIT.json

The clone is made afresh (``git clone``, then the commit checked out) and ``.ci/run`` builds
its virtual environment itself, from pip's local wheel cache where it has one (a fresh machine
also downloads every package: that time is not in this figure). A ``.venv`` is never moved in
from elsewhere: its console scripts name the old interpreter's path, and the schemathesis
tests failed on such a run. ``CI=true`` is set, as on CI. The report holds the wall seconds of
the whole ``.ci/run`` (setup and tests), the seconds pytest reports for itself, its passed /
failed / skipped counts, the exit status and the last lines of the log; the load average at
the start and end is in its provenance block, so a figure from a loaded machine says so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from coldbrew.bench.provenance import begin, stamped

SUMMARY = re.compile(r"=+ (?P<counts>.*?) in (?P<seconds>[\d.]+)s")
COUNT = re.compile(r"(?P<n>\d+) (?P<what>passed|failed|skipped|errors?|xfailed|xpassed)")


def pytest_summary(log: str) -> dict[str, Any]:
    """pytest's last summary line in ``log`` as counts and seconds (empty when there is none)."""
    found = list(SUMMARY.finditer(log))
    if not found:
        return {}
    last = found[-1]
    counts = {m["what"].rstrip("s") if m["what"].startswith("error") else m["what"]: int(m["n"])
              for m in COUNT.finditer(last["counts"])}  # fmt: skip
    return {"counts": counts, "pytest_seconds": float(last["seconds"])}


def fresh_clone(repo: str, commit: str, clone: Path) -> str:
    """``clone`` made anew from ``repo`` at ``commit``; returns the full commit hash."""
    if clone.exists():
        shutil.rmtree(clone)
    subprocess.run(["git", "clone", "-q", repo, str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", commit], check=True)
    head = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return head.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", default=".", help="the repository to clone")
    ap.add_argument("--commit", default="HEAD")
    ap.add_argument("--clone", required=True, help="where the fresh clone goes (replaced)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    started = begin()
    clone = Path(args.clone)
    commit = fresh_clone(args.repo, args.commit, clone)
    start = time.perf_counter()
    done = subprocess.run(["bash", ".ci/run"], cwd=clone, env={**os.environ, "CI": "true"},
                          capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - start
    log = done.stdout + done.stderr
    (clone / "ci.log").write_text(log)
    report = {
        "commit": commit,
        "venv": "fresh",
        "returncode": done.returncode,
        "wall_seconds": wall,
        **pytest_summary(log),
        "log_tail": log.splitlines()[-15:],
    }
    print(json.dumps({k: v for k, v in report.items() if k != "log_tail"}))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(stamped(report, started), indent=1))


if __name__ == "__main__":
    main()
