"""A refit worker's tie to the service that started it: the worker ends when the service does.

A refit runs in a process forked from the refit server (:func:`coldbrew.live.refitter.fork_refit`,
:mod:`coldbrew.live.worker`), which the service started. When the service is killed (``kill
-9``, the kernel's out-of-memory killer) none of its shutdown runs, so the child must notice by
itself, and it must never write a model version for a service that is gone (such a version may
hold a user forgotten meanwhile). The child reads two signs, neither of
which needs the parent's help:

- multiprocessing's parent sentinel: the read end of a pipe whose write end only the service
  holds (also in a child forked from the refit server); the kernel closes that end when the
  service dies, whatever killed it;
- the parent's pid (the refit server's, or the service's for a spawned child): an orphan is
  re-parented (to PID 1 or a subreaper), so ``os.getppid()`` changes.

A watcher thread waits on the sentinel and ends the process at once (``os._exit``) when it
closes, so a refit inside a long step (a fit, an encoding) stops within a moment; the refit also
checks (:meth:`Lifeline.check`) before each of its steps and right before and after it commits a
version.

Linux's ``PR_SET_PDEATHSIG`` is not used: it fires when the *thread* that started the child
ends, not the process, and the service starts refits from short-lived threads (a queued refit is
launched by the supervisor thread of the one before, which then returns), so it would kill
healthy refits.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
from dataclasses import dataclass
from multiprocessing.connection import wait

log = logging.getLogger("coldbrew.live.lifeline")
GONE_EXIT = 75
"""The exit status of a refit process that stopped because its service is gone."""
WATCH_SECONDS = 1.0
"""How often the watcher also compares the parent's pid (the sentinel wakes it at once)."""


class ParentGone(RuntimeError):
    """The service that started this refit is gone: its result has nowhere to go."""


@dataclass(frozen=True)
class Lifeline:
    """The parent this process was started by: its pid and, in a multiprocessing child, the
    sentinel of the process that asked for it (the service)."""

    parent_pid: int
    sentinel: int | None = None

    @classmethod
    def here(cls) -> Lifeline:
        """The lifeline of the current process (call it first thing in the child)."""
        parent = mp.parent_process()
        return cls(os.getppid(), parent.sentinel if parent is not None else None)

    def alive(self) -> bool:
        """Whether the parent still runs: same parent pid, and its sentinel still open."""
        if os.getppid() != self.parent_pid:
            return False
        return self.sentinel is None or not wait([self.sentinel], timeout=0)

    def check(self, step: str) -> None:
        """Raise :class:`ParentGone` (naming ``step``, what was about to happen) when the
        parent is gone."""
        if not self.alive():
            raise ParentGone(f"the service that started this refit is gone (before {step})")

    def watch(self) -> threading.Thread:
        """Start a daemon thread that ends this process with :data:`GONE_EXIT` as soon as the
        parent is gone."""
        thread = threading.Thread(target=self._watch, name="coldbrew-lifeline", daemon=True)
        thread.start()
        return thread

    def _watch(self) -> None:
        while self.alive():
            if self.sentinel is not None:
                wait([self.sentinel], timeout=WATCH_SECONDS)
            else:
                threading.Event().wait(WATCH_SECONDS)
        log.warning("the service that started this refit is gone: the refit stops")
        os._exit(GONE_EXIT)
