"""What went wrong where: each bad row is named by file, line, field and reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RowProblem:
    """One rejected row (or whole file, when ``line`` is ``None``)."""

    file: str
    line: int | None
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}, line {self.line}"
        what = f" [{self.field}]" if self.field else ""
        return f"{where}{what}: {self.reason}"


class DataError(ValueError):
    """Input data that cannot be used as it is; the message lists every problem (up to a limit)."""

    def __init__(self, problems: list[RowProblem], hint: str = "", limit: int = 20) -> None:
        self.problems = problems
        lines = [str(p) for p in problems[:limit]]
        if len(problems) > limit:
            lines.append(f"... and {len(problems) - limit} more")
        message = "\n".join(lines)
        if hint:
            message += f"\n{hint}"
        super().__init__(message)


class BadRowsError(DataError):
    """Bad rows that ``on_bad_rows="skip"`` would leave out (the CLI's ``--skip-bad-rows``).

    The message ends with the library's spelling of that choice; a command line re-raises the
    problems with its own (:meth:`with_hint`).
    """

    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__(problems, hint="fix these rows, or skip them with on_bad_rows='skip'")

    def with_hint(self, hint: str) -> DataError:
        """The same problems, ending with ``hint`` instead."""
        return DataError(self.problems, hint=hint)


@dataclass
class LoadReport:
    """What loading kept, skipped and cleaned, for the user to read."""

    skipped: list[RowProblem] = field(default_factory=list)
    duplicates_dropped: int = 0

    def __bool__(self) -> bool:
        return bool(self.skipped or self.duplicates_dropped)

    def summary(self, limit: int = 5) -> str:
        lines = []
        if self.duplicates_dropped:
            lines.append(f"dropped {self.duplicates_dropped:,} exact duplicate interactions")
        if self.skipped:
            by_reason = Counter(f"{p.file}: {p.reason.split(':')[0]}" for p in self.skipped)
            lines.append(f"skipped {len(self.skipped):,} bad rows:")
            lines += [f"  {n:,} x {reason}" for reason, n in by_reason.most_common()]
            lines += [f"  e.g. {p}" for p in self.skipped[:limit]]
        return "\n".join(lines)
