"""Where the service's refits run: processes forked from a server that imported their libraries.

A refit used to start a fresh ``spawn`` child, a new interpreter that imported numpy, pandas,
scikit-learn, implicit, PyTorch and sentence-transformers (about 12 of the 42 s of an ml-100k
refit) before the job's first step. Now each refit is forked from :mod:`multiprocessing`'s
fork server, which imported them once (:mod:`coldbrew.live.preload`, :data:`MODULES`): a refit
starts in milliseconds and is still a fresh process that ends with its job, so nothing is left
over from one refit to the next and its memory is returned after it.

The service starts the server in the background when it starts (:func:`warm`); a refit launched
before the server's imports are done waits for them in its supervisor thread, never in the
request that launched it (:class:`Forked`). The server holds no thread when it forks (the
preload keeps OpenBLAS and pyarrow's allocator from starting theirs; PyTorch and onnxruntime
start none on import).

Issue 28's guarantees hold as for a spawned child (:mod:`coldbrew.live.lifeline`): a refit's
lifeline is the service's own pipe (multiprocessing's parent sentinel), so it ends within a
moment of the service; the server ends once the service and every refit it forked are gone
(they all hold its "alive" pipe), and while it is still importing it stops as soon as its
parent changes (the service is gone).
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import threading
from collections.abc import Callable
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from typing import Any

CONTEXT = mp.get_context("forkserver")
PRELOAD = "coldbrew.live.preload"
"""The one module the server is told to import: it sets up the server, then imports
:data:`MODULES`."""
MODULES = (
    "coldbrew.live.refit",
    "pandas",  # coldbrew imports it at a first frame (coldbrew.data.frames): every refit builds one
    "coldbrew.store.db",
    "coldbrew.models.recipes",
    "threadpoolctl",
    "implicit.cpu.als",
    "sklearn.feature_extraction.text",
    "sklearn.decomposition",
    "torch",
    "sentence_transformers",
)
"""What a refit imports: the job and its store, the hybrid's parts and the libraries they load on
first use, and the encoder's (loaded only when the refit has something to encode)."""
Outcome = Callable[[], dict[str, Any]]


def _prepare() -> None:
    CONTEXT.set_forkserver_preload([PRELOAD])


def warm() -> threading.Thread:
    """Start the refit server now, in the background: its imports are done by the first refit."""
    _prepare()
    thread = threading.Thread(target=forkserver.ensure_running, name="refit-server", daemon=True)
    thread.start()
    return thread


def server_pid() -> int | None:
    """The refit server's pid in this process (``None``: not started)."""
    pid: int | None = getattr(forkserver._forkserver, "_forkserver_pid", None)
    return pid


def preloaded() -> list[str]:
    """Which of :data:`MODULES` this process has imported (a refit forked from the server: all
    of them, before its job began)."""
    return [m for m in MODULES if m in sys.modules]


def process(target: Callable[..., None], args: tuple[Any, ...]) -> mp.process.BaseProcess:
    """A refit process to be forked from the server (daemonic: it ends with the service)."""
    _prepare()
    return CONTEXT.Process(target=target, args=args, name="coldbrew-refit", daemon=True)


class Forked:
    """A refit process started by whoever waits for its outcome (:meth:`wait`, the refitter's
    supervisor thread), so that the request that launched it never waits for the server.

    Until it has started it counts as running, and terminating it means it never starts.
    ``send``: the child's end of the result pipe, closed here once the child holds it.
    """

    def __init__(self, child: mp.process.BaseProcess, send: Connection) -> None:
        self.child = child
        self._send = send
        self._started = False
        self._dropped = False

    @property
    def pid(self) -> int | None:
        return self.child.pid

    def is_alive(self) -> bool:
        return self.child.is_alive() if self._started else not self._dropped

    def terminate(self) -> None:
        self._dropped = True
        if self._started:
            self.child.terminate()

    def join(self, timeout: float | None = None) -> None:
        if self._started:
            self.child.join(timeout)

    def wait(self, receive: Outcome) -> dict[str, Any]:
        """Start the process (unless terminated meanwhile), then ``receive`` its outcome."""
        try:
            if not self._dropped:
                self.child.start()
                self._started = True
        except Exception as exc:  # reported to the refitter, which keeps serving
            return {"error": f"the refit process did not start: {type(exc).__name__}: {exc}"}
        finally:
            self._send.close()
        if not self._started:
            return {"error": "the refit was stopped before its process started"}
        if self._dropped:  # terminated while it was starting
            self.child.terminate()
        return receive()
