"""Where and when refits run: the supervisor in the service (:class:`Refitter`: every so many
events or minutes, on request, one at a time, cancelled on forget) and the launchers (a process
forked from the refit server, :mod:`~coldbrew.live.worker`, or a Ray task)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from coldbrew.cluster.refit import ray_refits
from coldbrew.live import worker
from coldbrew.live.refit import RefitJob, refit_process, run_quietly
from coldbrew.live.versions import ModelVersions

log = logging.getLogger("coldbrew.live.refit")


class Running(Protocol):
    """A refit under way elsewhere: a child process (:func:`fork_refit`) or a Ray task."""

    def is_alive(self) -> bool: ...

    def terminate(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...


Launcher = Callable[[RefitJob], tuple[Running, Callable[[], dict[str, Any]]]]
"""Starts a job; returns it running and a call that waits for its outcome (``{"error": ...}``
when it failed)."""


def fork_refit(job: RefitJob) -> tuple[Running, Callable[[], dict[str, Any]]]:
    """The default launcher: the job in a process forked from the refit server (it imported the
    refit's libraries once, :mod:`~coldbrew.live.worker`), started by the waiting thread."""
    receive, send = worker.CONTEXT.Pipe(duplex=False)
    libraries = worker.encoder_libraries(job.encoder, job.runtime)
    child = worker.process(refit_process, (job, send), libraries)
    forked = worker.Forked(child, send)
    versions = ModelVersions(job.models_dir)
    return forked, lambda: forked.wait(lambda: _receive(child, receive, versions))


def _receive(process: BaseProcess, conn: Connection, versions: ModelVersions) -> dict[str, Any]:
    outcome: dict[str, Any] = {}
    try:
        outcome = conn.recv()
    except (EOFError, OSError):
        outcome = {}
    process.join()
    if process.exitcode:  # killed or cancelled: what it was writing goes now
        versions.clean(process.pid)
    return outcome or {"error": f"refit process ended with exit code {process.exitcode}"}


def launcher(ray: str | None, *, warm: bool = True, libraries: Sequence[str] = ()) -> Launcher:
    """Where refits run: processes forked from the refit server (``warm``: started now, in the
    background, :func:`~coldbrew.live.worker.warm`, importing ``libraries`` too: the encoder's,
    :func:`~coldbrew.live.worker.encoder_libraries`), or Ray tasks on the cluster ``ray`` names
    (``auto`` or an address)."""
    if not ray:
        if warm:
            worker.warm(libraries)
        return fork_refit
    return ray_refits(ray, run_quietly)


# ---- the supervisor (runs in the service) ----------------------------------------------------
@dataclass
class RefitStats:
    """What /metrics and GET /admin/refit report."""

    counts: dict[str, int] = field(default_factory=lambda: {"swapped": 0, "kept": 0, "failed": 0})
    last: dict[str, Any] = field(default_factory=dict)
    running_since: float | None = None


class Refitter:
    """Starts refits in a child process (or wherever ``launch`` puts them), one at a time, and
    hands good results to ``on_result``.

    Parameters
    ----------
    make_job
        Builds the job from the current state (``forced``: after forget-user).
    on_result
        Called (in a supervisor thread) with the child's outcome; it swaps the model.
    every, minutes, min_interactions
        Refit after ``every`` new interactions, or ``minutes`` after the last refit if any
        arrived since (0 turns either off); never with fewer positive events than
        ``min_interactions``.
    launch
        Where a job runs (default :func:`fork_refit`; :func:`coldbrew.cluster.refit.ray_refits`
        runs it as a Ray task).
    """

    def __init__(
        self,
        make_job: Callable[[bool], RefitJob],
        on_result: Callable[[dict[str, Any], RefitJob], None],
        *,
        every: int = 1000,
        minutes: float = 60.0,
        min_interactions: int = 50,
        launch: Launcher = fork_refit,
    ) -> None:
        self.make_job = make_job
        self.launch = launch
        self.on_result = on_result
        self.every = every
        self.minutes = minutes
        self.min_interactions = min_interactions
        self.stats = RefitStats()
        self.process: Running | None = None
        self.new_interactions = 0
        self.positives = 0
        self._pending_forced = False
        self._pending = False
        self._cancelled: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last = time.monotonic()
        self._timer: threading.Thread | None = None
        # whether this process may train (replicas: only the elected trainer of the fleet)
        self.leader: Callable[[], bool] = lambda: True

    # ---- triggers --------------------------------------------------------------------------
    def start_timer(self) -> None:
        if self.minutes > 0 and self._timer is None:
            self._timer = threading.Thread(target=self._tick, name="refit-timer", daemon=True)
            self._timer.start()

    def _tick(self) -> None:
        while not self._stop.wait(min(30.0, self.minutes * 60)):
            due = time.monotonic() - self._last >= self.minutes * 60
            if due and self.new_interactions > 0:
                self.request(reason="timer")

    def added(self, positives: int, total: int) -> None:
        """Count new interactions (``positives`` of them positive) and refit when due."""
        with self._lock:
            self.new_interactions += total
            self.positives += positives
            due = self.every > 0 and self.new_interactions >= self.every
        if due:
            self.request(reason="interactions")

    def request(self, *, forced: bool = False, reason: str = "admin") -> str:
        """Start a refit now (or right after the running one); returns the state
        (``elsewhere``: another replica trains for the fleet)."""
        with self._lock:
            if not self.leader():
                return "elsewhere"
            if not forced and self.positives < self.min_interactions:
                return "waiting"
            if self.running:
                self._pending = True
                self._pending_forced |= forced
                return "queued"
            self._launch(forced, reason)
            return "started"

    # ---- the child -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """From the launch until the outcome is recorded: the child's exit alone is not the
        end (its model is then still being loaded and swapped in)."""
        return self.process is not None

    def _launch(self, forced: bool, reason: str) -> None:
        job = self.make_job(forced)
        process, wait = self.launch(job)
        self.process = process
        self.new_interactions = 0
        self._last = time.monotonic()
        self.stats.running_since = time.time()
        log.info("refit started (%s%s)", reason, ", forced" if forced else "")
        threading.Thread(target=self._supervise, args=(wait, job), daemon=True).start()

    def _supervise(self, wait: Callable[[], dict[str, Any]], job: RefitJob) -> None:
        outcome = wait()
        with self._lock:
            cancelled, self._cancelled = self._cancelled, None
        if cancelled is not None:
            outcome = {"error": f"cancelled: {cancelled}"}
        if "error" not in outcome:
            try:
                self.on_result(outcome, job)
            except Exception as exc:
                log.exception("a refit's model could not be served")
                outcome = {**outcome, "error": f"{type(exc).__name__}: {exc}", "swapped": False}
        self._finish(outcome)

    def _finish(self, outcome: dict[str, Any]) -> None:
        with self._lock:
            if "error" in outcome:
                self.stats.counts["failed"] += 1
                log.warning("refit failed: %s (the serving model is unchanged)", outcome["error"])
            else:
                self.stats.counts["swapped" if outcome["swapped"] else "kept"] += 1
            self.stats.last = {**outcome, "finished": time.time()}
            self.stats.running_since = None
            self.process = None
            pending, forced = self._pending, self._pending_forced
            self._pending = self._pending_forced = False
            if pending and not self._stop.is_set() and self.leader():
                self._launch(forced, "queued")

    def cancel(self, reason: str) -> None:
        """End the running refit, if any, without a result (a forget-user: it read the user, so
        its model would be discarded, and its files must not hold them); it counts as failed,
        and a refit queued meanwhile starts after it."""
        with self._lock:
            process = self.process
            if process is None or not process.is_alive():
                return
            self._cancelled = reason
        log.info("refit cancelled (%s)", reason)
        process.terminate()

    def stop(self) -> None:
        """Stop the timer and any running refit (its result is discarded)."""
        self._stop.set()
        process = self.process
        if process is not None and process.is_alive():
            process.terminate()
            process.join(10)
