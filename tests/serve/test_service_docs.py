"""The curl and Python examples in docs/service.md and the README run, in order, against a live
server, so the walk-through a newcomer follows cannot rot."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from servicekit import WRITE_KEY

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```(bash|python)\n(.*?)```", re.S)


def examples(path: Path) -> list[tuple[str, str]]:
    """The runnable blocks: bash blocks that call curl, and every Python block."""
    found = BLOCK.findall(path.read_text("utf-8"))
    return [(lang, code) for lang, code in found if lang == "python" or "curl " in code]


@pytest.mark.parametrize("doc", ["docs/service.md", "README.md"])
def test_documented_examples_run(doc: str, live_server: str) -> None:
    blocks = examples(ROOT / doc)
    assert blocks, f"{doc} has no runnable examples"
    env = {**os.environ, "COLDBREW_URL": live_server, "COLDBREW_API_KEY": WRITE_KEY}
    for lang, code in blocks:
        if lang == "bash":
            if shutil.which("curl") is None:
                pytest.skip("curl is not installed")
            command = ["bash", "-euo", "pipefail", "-c", code]
        else:
            command = [sys.executable, "-c", code]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{doc} example failed:\n{code}\n{done.stdout}\n{done.stderr}"
