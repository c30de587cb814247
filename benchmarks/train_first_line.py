"""Seconds from starting ``coldbrew train`` to its first line on stderr and to its first step.

    PYTHONPATH=SRC .venv/bin/python benchmarks/train_first_line.py -- \
        --dataset ml-100k --method lora --max-steps 100 --out /tmp/first-line

Starts the command, timestamps what it writes to stderr (progress bars included), and stops it
once the fine-tuning bar shows its first finished step (with ``--first-output``: once it has
written anything, which is what the 10-second aim of issue 27 is about).

    PYTHONPATH=SRC .venv/bin/python benchmarks/train_first_line.py --first-output -- \
        --dataset ml-100k --method lora --max-steps 100 --out /tmp/first-line

Prints one JSON line: the seconds to the first stderr output, to the first fine-tuning bar
and to its first step, and the phase lines seen until then.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from coldbrew.bench.provenance import stamped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--first-output", action="store_true", help="stop at the first output, not the first step"
    )
    parser.add_argument("train", nargs=argparse.REMAINDER, help="-- then coldbrew train's options")
    args = parser.parse_args()
    argv = args.train[1:] if args.train[:1] == ["--"] else args.train
    until = "first_output" if args.first_output else "first_step"
    command = [sys.executable, "-m", "coldbrew", "train", *argv]
    began = time.perf_counter()
    child = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    if child.stderr is None:
        raise RuntimeError("no stderr pipe")
    seen = ""
    marks: dict[str, float] = {}
    while until not in marks:
        chunk = os.read(child.stderr.fileno(), 4096).decode(errors="replace")
        if not chunk:
            break
        seen += chunk
        now = round(time.perf_counter() - began, 1)
        marks.setdefault("first_output", now)
        bar = "fine-tune:   0%|"  # the steps' tqdm bar (phase lines read "fine-tune: ...")
        if bar in seen:
            marks.setdefault("fine_tune_bar", now)
            if " 1/" in seen.split(bar, 1)[1]:
                marks["first_step"] = now
    child.kill()
    child.wait()
    first = seen.strip().splitlines()[0][:100] if seen.strip() else ""
    phases = [line for line in seen.replace("\r", "\n").splitlines() if line.startswith("[")]
    source = os.environ.get("PYTHONPATH", "")
    print(json.dumps(stamped({"source": source, **marks, "first": first, "phases": phases})))


if __name__ == "__main__":
    main()
