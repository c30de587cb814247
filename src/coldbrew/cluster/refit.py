"""The service's background refit as a Ray task (``coldbrew serve --ray``, ``COLDBREW_RAY``).

The task runs the function the service gives (:func:`coldbrew.live.refit.run_quietly`, exactly
what the default child process runs) on the job; nothing here imports the service. It reads the
database and writes the new version into the models directory, so on a multi-node cluster both
must be reachable from the node it lands on: a PostgreSQL URL and a shared models directory. A
SQLite database is a local file: its refits stay on this node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from coldbrew.cluster import connect, require_ray


class DatabaseJob(Protocol):
    """A job that reads a database (its URL decides where it may run)."""

    @property
    def db_url(self) -> str: ...


Job = TypeVar("Job", bound=DatabaseJob)


class RayRefit:
    """A refit submitted as a Ray task: what the refitter polls, waits for and cancels."""

    def __init__(self, ref: Any) -> None:
        self.ref = ref

    def is_alive(self) -> bool:
        ready, _ = require_ray().wait([self.ref], timeout=0)
        return not ready

    def terminate(self) -> None:
        require_ray().cancel(self.ref, force=True)

    def join(self, timeout: float | None = None) -> None:
        require_ray().wait([self.ref], timeout=timeout)

    def outcome(self) -> dict[str, Any]:
        """Wait for the task; its outcome, or ``{"error": ...}`` when it failed or was
        cancelled."""
        try:
            outcome: dict[str, Any] = require_ray().get(self.ref)
        except Exception as exc:  # reported to the refitter, which keeps the serving model
            return {"error": f"{type(exc).__name__}: {exc}"}
        return outcome


def _options(db_url: str) -> dict[str, Any]:
    """One CPU, no retry (a failed refit is reported, the next one is due anyway), and on this
    node when the database is a SQLite file."""
    options: dict[str, Any] = {"num_cpus": 1, "max_retries": 0}
    if "://" not in db_url or db_url.startswith("sqlite"):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = require_ray().get_runtime_context().get_node_id()
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(here, soft=False)
    return options


def ray_refits(
    address: str, run: Callable[[Job], dict[str, Any]]
) -> Callable[[Job], tuple[RayRefit, Callable[[], dict[str, Any]]]]:
    """A refit launcher for :class:`~coldbrew.live.refitter.Refitter` that submits each job as a
    Ray task running ``run(job)`` on the cluster ``address`` names (joined now, so a wrong
    address fails at start)."""
    connect(address)

    def launch(job: Job) -> tuple[RayRefit, Callable[[], dict[str, Any]]]:
        task = require_ray().remote(run).options(**_options(job.db_url))
        running = RayRefit(task.remote(job))
        return running, running.outcome

    return launch
