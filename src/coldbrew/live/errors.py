"""Domain errors the engine raises; the app turns them into HTTP responses."""

from __future__ import annotations

from dataclasses import dataclass

# the Retry-After of a 503 while the database is unavailable (or the service is starting)
DATABASE_RETRY_AFTER = "5"


class NotFoundError(KeyError):
    """An id the caller named does not exist (HTTP 404)."""

    def __init__(self, kind: str, ident: str, where: str = "") -> None:
        super().__init__(f"{where + ': ' if where else ''}{kind} {ident!r} not found")
        self.kind = kind
        self.ident = ident

    def at(self, where: str) -> NotFoundError:
        """The same error, saying ``where`` in the request the id was named (``queries[2]``)."""
        return NotFoundError(self.kind, self.ident, where)

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class RowError:
    """What is wrong with one row of a batch."""

    index: int
    ident: str
    field: str
    message: str


class BatchError(ValueError):
    """Some rows of a batch are invalid; nothing of the batch was written (HTTP 422)."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} invalid row(s); nothing was written")
        self.errors = errors
