"""Saved index structures that any number of writers may share: a file named by its content and
a record naming it, each written whole.

An index is saved as two files: the structure (``PATH.<digest>``, named by a hash of what it was
saved for: the catalogue's fingerprint and the structure's node labels) and a small record
(``PATH.json``: the fingerprint, the labels and the structure's file name). Each is written to a
temporary file of its own and renamed into place, so a reader sees a whole old file or a whole
new one, never a mix; and since the record names its structure, two processes saving to one
path (replicas over one database in one working directory) cannot leave the labels of one
beside the structure of the other. The last record written wins; a start whose catalogue it
does not describe builds its own structure, as it would with no file at all.

A save removes structures no record has named for a minute (the one the record named before,
a superseded writer's), temporary files a crashed writer left an hour ago, and the single
``PATH`` file of the layout before this one (its record had no ``file`` and is still read).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

STALE_SECONDS = 60.0
"""A structure no record names is removed once this old (another writer may be about to name
the one it just wrote)."""
ORPHAN_SECONDS = 3600.0
"""A temporary file this old belongs to a writer that died."""


def record_path(path: Path) -> Path:
    """The record beside the structures saved at ``path``."""
    return path.with_name(path.name + ".json")


def structures(path: Path) -> list[Path]:
    """The structure files saved at ``path`` (``PATH.<16 hex digits>``), sorted."""
    named = _structure_name(path)
    return sorted(p for p in path.parent.glob(glob.escape(path.name) + ".*") if named(p.name))


def _structure_name(path: Path) -> Callable[[str], object]:
    """Whether a file name is one of ``path``'s structures."""
    return re.compile(re.escape(path.name) + r"\.[0-9a-f]{16}").fullmatch


def save(
    path: Path, fingerprint: str, labels: list[str | None], write: Callable[[IO[bytes]], object]
) -> Path:
    """Save a structure for ``fingerprint`` with node ``labels`` at ``path``; ``write`` writes
    the structure's bytes to an open file. Returns the structure's file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    labels_json = json.dumps(labels)
    digest = hashlib.sha256(f"{fingerprint}\n{labels_json}".encode()).hexdigest()[:16]
    data = path.with_name(f"{path.name}.{digest}")
    try:  # the same structure, saved before (by this process or another): keep it, made fresh
        os.utime(data)  # so that no other writer's clean-up takes it before the record names it
    except FileNotFoundError:
        write_whole(data, write)
    record = (
        f'{{"fingerprint": {json.dumps(fingerprint)}, "file": {json.dumps(data.name)}, '
        f'"labels": {labels_json}}}'
    )
    write_whole(record_path(path), lambda handle: handle.write(record.encode()))
    _sweep(path, keep=data)
    return data


def load(
    path: Path, fingerprint: Callable[[], str], read: Callable[[str], Any]
) -> tuple[Any, list[str | None]] | None:
    """The structure saved at ``path`` and its labels, if the record there was saved for
    ``fingerprint()`` (called only when a record exists) and its structure reads whole (as many
    nodes as labels); else ``None``."""
    try:  # no record (FileNotFoundError) is no saved structure
        meta = json.loads(record_path(path).read_text())
        if meta.get("fingerprint") != fingerprint():
            return None
        name = Path(meta.get("file", path.name)).name  # no "file": the layout before this one
        labels = meta["labels"]
        structure = read(str(path.with_name(name)))
    except (OSError, ValueError, KeyError, RuntimeError):  # faiss's read errors: RuntimeError
        return None
    if structure.ntotal != len(labels):
        return None
    return structure, labels


def write_whole(target: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write ``target`` through a temporary file of this writer's own, then rename it into
    place: readers and other writers see the old file or the new one, whole."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f"{target.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o644)  # as open() makes it under the usual umask (mkstemp: 0600)
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _sweep(path: Path, keep: Path) -> None:
    """Remove what no record will name again (best effort: a file already gone is fine)."""
    now = time.time()
    structure = _structure_name(path)
    for candidate in path.parent.glob(glob.escape(path.name) + ".*"):
        name = candidate.name
        if candidate == keep:
            continue
        if structure(name):
            too_old = STALE_SECONDS
        elif name.endswith(".tmp"):
            too_old = ORPHAN_SECONDS
        else:
            continue
        with contextlib.suppress(OSError):
            if now - candidate.stat().st_mtime > too_old:
                candidate.unlink()
    with contextlib.suppress(OSError):
        if path.is_file():  # the structure of the layout before this one
            path.unlink()
