"""Wall and CPU seconds of named steps (a refit's parts, a hybrid's fit), for reports."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Stopwatch:
    """Sums the wall-clock and CPU seconds (this process, every thread) spent in each step.

    ``with watch.time("weights"): ...`` adds to ``"weights"``; :meth:`lap` ends the step under
    way, if any, and starts the next (for steps marked by a call rather than a block).
    """

    def __init__(self) -> None:
        self.steps: dict[str, dict[str, float]] = {}
        self._open: tuple[str, float, float] | None = None

    @contextmanager
    def time(self, step: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self._add(step, time.perf_counter() - wall, time.process_time() - cpu)

    def lap(self, step: str | None) -> None:
        """End the open step and open ``step`` (``None``: open none)."""
        wall, cpu = time.perf_counter(), time.process_time()
        if self._open is not None:
            name, start_wall, start_cpu = self._open
            self._add(name, wall - start_wall, cpu - start_cpu)
        self._open = None if step is None else (step, wall, cpu)

    def _add(self, step: str, wall: float, cpu: float) -> None:
        entry = self.steps.setdefault(step, {"wall_s": 0.0, "cpu_s": 0.0})
        entry["wall_s"] += wall
        entry["cpu_s"] += cpu

    def report(self, digits: int = 3) -> dict[str, dict[str, float]]:
        """Each step's seconds, rounded."""
        return {k: {n: round(v, digits) for n, v in e.items()} for k, e in self.steps.items()}
