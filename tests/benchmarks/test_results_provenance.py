"""Every committed result says where it came from (issue 25): the report itself records its
commit and command, or ``benchmarks/results/MANIFEST.toml`` gives the commit that committed it
and the command its lab note gives (or says "not recorded")."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
MANIFEST = RESULTS / "MANIFEST.toml"


def _entries() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = tomllib.loads(MANIFEST.read_text())["report"]
    return entries


def _records_itself(path: Path) -> bool:
    """A JSON report holding its own commit and command (its provenance block or older meta)."""
    if path.suffix != ".json":
        return False
    report = json.loads(path.read_text())
    if not isinstance(report, dict):
        return False
    meta = report.get("meta", report)
    block = meta.get("provenance") or report.get("provenance") or {}
    source = meta.get("source") if isinstance(meta.get("source"), dict) else {}
    commit = block.get("commit") or source.get("commit") or meta.get("git")
    return bool(commit) and bool(block.get("command") or meta.get("command"))


def _report_of(path: Path) -> list[Path]:
    """The JSON reports that speak for ``path``: itself, the same name as ``.json`` beside it,
    and the ``results.json`` of the ``coldbrew bench`` folder it sits in."""
    folders = [f / "results.json" for f in path.parents if f.is_relative_to(RESULTS)]
    return [path, path.with_suffix(".json"), *[f for f in folders if f.exists()]]


def _listed(path: str, named: set[str]) -> bool:
    return path in named or any(p.endswith("/") and path.startswith(p) for p in named)


def test_every_result_file_records_or_is_listed_with_a_commit_and_a_command() -> None:
    named = {p for entry in _entries() for p in entry["paths"]}
    files = [p for p in sorted(RESULTS.rglob("*")) if p.is_file() and p != MANIFEST]
    assert len(files) > 400
    unknown = [
        str(p.relative_to(RESULTS))
        for p in files
        if not _listed(str(p.relative_to(RESULTS)), named)
        and not any(r.exists() and _records_itself(r) for r in _report_of(p))
    ]
    assert not unknown, f"results with no commit or command anywhere: {unknown}"


def test_every_manifest_entry_names_existing_files_a_commit_and_a_command() -> None:
    for entry in _entries():
        for path in entry["paths"]:
            assert (RESULTS / path).exists(), path
        assert entry["committed_in"], entry["paths"]
        assert all(re.fullmatch(r"[0-9a-f]{7,40}", c) for c in entry["committed_in"]), entry
        assert entry["command"].strip(), entry["paths"]
        if entry["command"] != "not recorded":
            assert entry["command_from"] == "the report" or entry["command_from"].startswith(
                "notes/"
            ), entry


def test_a_command_said_to_come_from_a_note_is_in_that_note() -> None:
    for entry in _entries():
        source = entry.get("command_from", "")
        if source.startswith("notes/"):
            words = " ".join((RESULTS.parent / source).read_text().replace("\\\n", " ").split())
            assert entry["command"].split(" --out ")[0] in words, entry["paths"]
