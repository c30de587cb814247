"""benchmarks/README.md is generated from the committed reports (``benchmarks/readme.py``): it
must be what they say now, short, and list every script under a topic."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _page() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_readme", BENCHMARKS / "readme.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_page_is_what_the_committed_reports_say() -> None:
    page = _page().render()
    assert (BENCHMARKS / "README.md").read_text() == page, "run python benchmarks/readme.py"
    assert page.count("\n") < 300
    # every figure's report exists and is linked from the page
    for link in [line for line in page.splitlines() if "](results/" in line]:
        target = link.split("](results/", 1)[1].split(")", 1)[0]
        assert (BENCHMARKS / "results" / target).exists(), target


def test_every_script_is_listed_under_one_topic() -> None:
    listed = [name for names in _page().TOPICS.values() for name in names]
    scripts = sorted(p.name for p in BENCHMARKS.glob("*.py"))
    assert sorted(listed) == scripts, set(scripts) ^ set(listed)


def test_every_lab_note_is_dated_and_indexed() -> None:
    page = _page().render()
    for note in (BENCHMARKS / "notes").glob("*.md"):
        assert note.name[:4].isdigit() and note.name[10] == "-", note.name
        assert f"(notes/{note.name})" in page


def _relative_links(page: Path) -> list[str]:
    """The targets of ``[text](target)`` links that are not web addresses or anchors alone."""
    targets = re.findall(r"\]\(([^)\s]+)\)", page.read_text())
    return [t.split("#", 1)[0] for t in targets if not t.startswith(("http:", "https:", "#"))]


def test_every_relative_link_in_the_notes_and_the_page_resolves() -> None:
    pages = [BENCHMARKS / "README.md", *sorted((BENCHMARKS / "notes").glob("*.md"))]
    broken = [
        f"{page.relative_to(BENCHMARKS)}: {target}"
        for page in pages
        for target in _relative_links(page)
        if not (page.parent / target).exists()
    ]
    assert sum(len(_relative_links(p)) for p in pages) > 50
    assert not broken, f"links to nothing: {broken}"
