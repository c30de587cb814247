"""The README's Python example runs as written (so the docs cannot drift from the code)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_api_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "the README has no Python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 4 and all(line.startswith("[") for line in printed)
    assert "en-001" in printed[0]  # the spring jacket answers the spring-jacket request
    model, same = namespace["model"], namespace["same"]
    from coldbrew import UserQuery

    query = UserQuery(user_id="u1")
    assert same.recommend(query, k=5).ids == model.recommend(query, k=5).ids  # type: ignore[attr-defined]
    assert "new-1" in model.item_ids  # type: ignore[attr-defined]
