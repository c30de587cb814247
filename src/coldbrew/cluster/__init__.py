"""Batch work on a Ray cluster: catalogue encoding, the benchmark's model fits, the refit.

Nothing here imports Ray until it is asked for (``--ray`` on the command line, ``COLDBREW_RAY``
in the service); the base install does not need it (``pip install 'coldbrew[ray]'``).

:func:`connect` joins a cluster. ``auto`` follows Ray's own rule (the cluster named by
``RAY_ADDRESS``, else the latest one started with ``ray start`` on this machine, else a new local
instance); ``local`` always starts a new local instance; anything else is a cluster address
(``HOST:PORT`` or ``ray://HOST:PORT``). Workers run this process's copy of coldbrew (shipped as a
Ray ``py_modules`` entry), so a driver and its workers never disagree on the code; the cluster's
nodes need coldbrew's dependencies installed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

__all__ = ["WorkerPlan", "connect", "require_ray", "worker_plan"]


def require_ray() -> ModuleType:
    """The ``ray`` module, or an ImportError naming the extra that brings it."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise ImportError(
            f"--ray needs the [ray] extra: pip install 'coldbrew[ray]' ({exc})"
        ) from exc


def connect(address: str, *, num_cpus: int | None = None) -> None:
    """Join the Ray cluster ``address`` names (no-op when this process already joined one).

    Parameters
    ----------
    address
        ``auto``, ``local`` or a cluster address (see the module's docstring).
    num_cpus
        CPUs of a local instance started here (``None``: all of the machine's); ignored when
        joining a running cluster.
    """
    if not address.strip():
        raise ValueError("--ray needs auto, local or a cluster address such as 10.0.0.5:6379")
    ray = require_ray()
    if ray.is_initialized():
        return
    import coldbrew

    code = str(Path(coldbrew.__file__).resolve().parent)
    options: dict[str, object] = {"runtime_env": {"py_modules": [code]}}
    target = None if address == "auto" else address
    if target in (None, "local"):
        options.update(include_dashboard=False, num_cpus=num_cpus)
    ray.init(address=target, **options)


@dataclass(frozen=True)
class WorkerPlan:
    """How many workers a batch job starts and how many CPUs (encoder threads) each one gets."""

    workers: int
    cpus_per_worker: int


def worker_plan(workers: int | None = None, cpus_per_worker: int = 1) -> WorkerPlan:
    """``workers`` as given, else as many as the cluster's CPUs hold at ``cpus_per_worker``
    each (at least one)."""
    if cpus_per_worker < 1:
        raise ValueError(f"cpus_per_worker must be at least 1, got {cpus_per_worker}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if workers is None:
        cpus = float(require_ray().cluster_resources().get("CPU", 1.0))
        workers = max(1, int(cpus // cpus_per_worker))
    return WorkerPlan(workers, cpus_per_worker)
