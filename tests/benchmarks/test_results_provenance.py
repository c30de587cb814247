"""Every committed result says where it came from (issue 25): the report itself records its
commit and command, or ``benchmarks/results/MANIFEST.toml`` gives the commit that committed it,
the command that made it and the kind of evidence that command rests on."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
MANIFEST = RESULTS / "MANIFEST.toml"
KINDS = ("the report", "notes/", "inferred: ")


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
        assert entry["command"] != "not recorded", entry["paths"]


def test_every_command_names_the_kind_of_its_evidence() -> None:
    """Quoted (the report, a note) or inferred, and an inferred one says from what. None is
    unknown: a report no command can be given for is retired from results/ (MANIFEST.toml's
    header names those), not kept beside the others."""
    for entry in _entries():
        source = entry.get("command_from", "")
        assert source.startswith(KINDS), entry["paths"]
        assert "UNKNOWN" not in entry["command"], entry["paths"]
        if source.startswith("inferred: "):
            reason = source.split(": ", 1)[1]
            assert re.search(r"notes/|report|\.py", reason), entry["paths"]


def _in_note(command: str, words: str) -> bool:
    """The command's script and its arguments up to ``--out`` are in the note, together or (where
    the note quotes only the options) apart."""
    found = re.search(r"(\S+\.py)\b(.*)", command)
    if found is None:
        return command.split(" --out ")[0] in words
    script = found.group(1).rsplit("/", 1)[-1]
    arguments = re.split(r" --out |;| #", found.group(2))[0].strip()
    return f"{script} {arguments}".strip() in words or (script in words and arguments in words)


def test_a_command_said_to_come_from_a_note_is_in_that_note() -> None:
    quoted = [e for e in _entries() if e.get("command_from", "").startswith("notes/")]
    assert quoted
    for entry in quoted:
        note = RESULTS.parent / entry["command_from"]
        words = " ".join(note.read_text().replace("\\\n", " ").split())
        assert _in_note(" ".join(entry["command"].split()), words), entry["paths"]
