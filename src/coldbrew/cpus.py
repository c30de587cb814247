"""The CPUs this process may run on (its affinity mask, not the machine's count)."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """How many CPUs this process may use: a container or ``taskset`` may allow fewer than
    ``os.cpu_count()`` reports."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1
