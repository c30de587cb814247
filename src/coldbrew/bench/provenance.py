"""Where a benchmark result came from: the ``provenance`` block every report carries.

The block names the git commit the code ran from (and whether tracked files differed from it),
the exact command line, the machine, the load average at the start and at the end, and the
dates. The start is when this module was first imported, which in a benchmark script is its
start; a caller that starts later passes its own :func:`begin`.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

from coldbrew.bench.system import now, source


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def begin() -> dict[str, Any]:
    """What is known when a run starts: its date (UTC) and the load average then.

    Returns
    -------
    dict
        ``{"started": ISO date, "load_average": [1, 5, 15 minutes]}``.
    """
    return {"started": now(), "load_average": _load_average()}


STARTED = begin()


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed, quoted so it can be pasted back into a shell.

    Parameters
    ----------
    argv
        The arguments (``sys.argv`` by default); a script path is prefixed with ``python``.
    """
    args = list(sys.argv if argv is None else argv)
    if args and args[0].endswith(".py"):
        args = ["python", *args]
    return shlex.join(args)


def provenance(started: dict[str, Any] | None = None, command: str | None = None) -> dict[str, Any]:
    """The provenance block of a report finished now.

    Parameters
    ----------
    started
        What :func:`begin` returned at the run's start (by default, this module's import).
    command
        The command as the caller knows it (by default :func:`command_line`).

    Returns
    -------
    dict
        ``commit`` and ``dirty`` (``None`` outside a git checkout), ``command``, ``machine``
        (cpu count, platform, processor, ``OPENBLAS_NUM_THREADS``), ``load_average`` at
        ``start`` and ``end``, and the ``started`` and ``finished`` dates (UTC).
    """
    begun = started or STARTED
    code = source(Path(__file__).resolve().parent)
    return {
        "commit": code["commit"],
        "dirty": code["dirty"],
        "command": command or command_line(),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        },
        "load_average": {"start": begun["load_average"], "end": _load_average()},
        "started": begun["started"],
        "finished": now(),
    }


def stamped(report: dict[str, Any], started: dict[str, Any] | None = None) -> dict[str, Any]:
    """``report`` with its ``provenance`` block added (a new dict; ``report`` is unchanged).

    Raises
    ------
    ValueError
        If ``report`` already holds a ``provenance`` key.
    """
    if "provenance" in report:
        raise ValueError("the report already has a provenance block")
    return {**report, "provenance": provenance(started)}
