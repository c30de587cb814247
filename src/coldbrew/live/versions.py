"""Versioned models on disk: one directory per version, and a pointer to the one to serve.

``<root>/v000007/`` holds a saved model (``config.json`` + ``arrays.npz``, no pickle) and
``served.json`` (what it was trained on, how it validated). ``<root>/CURRENT`` names the version
to serve; it is replaced atomically (write, fsync, rename), so a crash at any moment leaves either
the old or the new pointer. A version is written under a temporary name and renamed into place
only when complete: a refit killed mid-way leaves a ``.tmp-*`` directory that the next start
removes, never a half-written version. A forget-user rewrites the served version without the
user at once (:meth:`ModelVersions.replace`) and deletes the others.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from coldbrew.index.persist import write_whole

CURRENT = "CURRENT"
META = "served.json"
_VERSION = re.compile(r"^v(\d{6})$")


@dataclass
class VersionInfo:
    """What a served model was made from and how it did."""

    version: str
    kind: str
    created: float = field(default_factory=time.time)
    interactions: int = 0
    trained_through: float = float("-inf")
    seconds: float = 0.0
    validation: dict[str, Any] = field(default_factory=dict)
    forced: bool = False
    searched_on: int = 0
    """Positive events the blend's weights were searched on (0: none, or not recorded)."""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["trained_through"] = (
            None if self.trained_through == float("-inf") else out["trained_through"]
        )
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VersionInfo:
        data = dict(data)
        if data.get("trained_through") is None:
            data["trained_through"] = float("-inf")
        return cls(**data)


class ModelVersions:
    """The version directories under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def versions(self) -> list[str]:
        """Complete versions, oldest first."""
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if _VERSION.match(p.name))

    def path(self, version: str) -> Path:
        if not _VERSION.match(version):
            raise ValueError(f"not a model version: {version!r}")
        return self.root / version

    def current(self) -> str | None:
        """The version to serve, if one was published and still exists."""
        pointer = self.root / CURRENT
        if not pointer.exists():
            return None
        version = pointer.read_text().strip()
        return version if (self.root / version / META).exists() else None

    def info(self, version: str) -> VersionInfo:
        return VersionInfo.from_json(json.loads((self.path(version) / META).read_text()))

    def staging(self) -> Path:
        """A fresh temporary directory to write the next version into."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f".tmp-{os.getpid()}-{time.time_ns()}"
        path.mkdir()
        return path

    def commit(
        self, staged: Path, info: VersionInfo, check: Callable[[], None] | None = None
    ) -> str:
        """Give a complete staged directory the next version number (the directory's rename is
        the commit); ``info.version`` is filled in. ``check`` is called right before the rename
        (it raises to stop the commit: a refit whose service is gone)."""
        numbers = [int(_VERSION.match(v).group(1)) for v in self.versions()]  # type: ignore[union-attr]
        info.version = f"v{max(numbers, default=0) + 1:06d}"
        _write_atomic(staged / META, json.dumps(info.to_json(), indent=2))
        if check is not None:
            check()
        staged.rename(self.path(info.version))
        return info.version

    def publish(self, version: str) -> None:
        """Point ``CURRENT`` at ``version`` (atomically)."""
        self.path(version)  # validates the name
        _write_atomic(self.root / CURRENT, version + "\n")

    def replace(self, version: str, write: Callable[[Path], None], *, share: bool = True) -> None:
        """Rewrite ``version`` from what ``write`` puts in a fresh directory (its
        ``served.json`` is kept) and delete every other version: a forget-user reaches the files
        at once. The old directory is renamed away, then the new one into place (a crash in
        between leaves no such version: the service starts from the language model and
        refits). ``share``: replicas also rewrite the fleet's copy (:mod:`.fleet`)."""
        current = self.path(version)
        staged = self.staging()
        try:
            write(staged)
            shutil.copyfile(current / META, staged / META)
            old = self.root / f".tmp-old-{version}-{time.time_ns()}"
            current.rename(old)
            staged.rename(current)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        shutil.rmtree(old, ignore_errors=True)
        ModelVersions.prune(self, {version})

    def clean(self, pid: int | None = None) -> None:
        """Remove what a killed refit left behind (temporary directories; ``pid``: only those
        of that process)."""
        prefix = ".tmp-" if pid is None else f".tmp-{pid}-"
        if self.root.exists():
            for p in self.root.iterdir():
                if p.name.startswith(prefix) and p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)

    def prune(self, keep: set[str]) -> list[str]:
        """Delete every version not in ``keep``; return the deleted ones."""
        gone = [v for v in self.versions() if v not in keep]
        for version in gone:
            shutil.rmtree(self.path(version), ignore_errors=True)
        return gone


def _write_atomic(path: Path, text: str) -> None:
    """``path`` written whole through a temporary file of this writer's own (replicas sharing
    one models folder may publish at once)."""
    write_whole(path, lambda handle: handle.write(text.encode("utf-8")))
