"""Whether a SQLite store's file is still the file it opened (issue 28, finding 3).

An open SQLite connection keeps the file it opened, not its path: after the file was deleted,
replaced (a new file renamed over it) or its folder moved, every query still answers and every
commit still succeeds, into a file nobody will read again. So the store remembers the file's
device and inode at start, and before each write transaction and each readiness probe checks
that the path still names that file, no shorter than the largest size seen (the service never
shrinks it: no ``VACUUM``, no ``auto_vacuum``) and still starting with SQLite's header.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import Engine

HEADER = b"SQLite format 3\x00"


@dataclass
class SqliteFile:
    """The identity of an opened SQLite file: its path, device, inode and largest size seen."""

    path: str
    device: int
    inode: int
    size: int

    @classmethod
    def opened_by(cls, engine: Engine) -> SqliteFile | None:
        """The file ``engine`` opened (call after it first connected); ``None`` when it is not
        SQLite or not a file (``:memory:``)."""
        database = engine.url.database
        if engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return None
        path = os.path.abspath(database)
        stat = os.stat(path)
        return cls(path, stat.st_dev, stat.st_ino, stat.st_size)

    def problem(self) -> str | None:
        """What happened to the file at the path since it was opened, or ``None`` if it is
        still that file; names no path (the answer may reach a client)."""
        try:
            stat = os.stat(self.path)
            with open(self.path, "rb") as file:
                header = file.read(len(HEADER))
        except FileNotFoundError:
            return "its file is gone (deleted, or its folder moved)"
        except OSError as exc:
            return f"its file cannot be read ({type(exc).__name__})"
        if (stat.st_dev, stat.st_ino) != (self.device, self.inode):
            return "its file was replaced by another"
        if stat.st_size < self.size:
            return "its file was truncated"
        if header != HEADER:
            return "its file was overwritten"
        self.size = stat.st_size
        return None
