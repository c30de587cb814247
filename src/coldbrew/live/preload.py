"""Imported once by the refit server (:mod:`coldbrew.live.worker`), before it forks any refit.

It imports the refit's libraries (:data:`~coldbrew.live.worker.MODULES`; the server imports the
encoder's next, :func:`~coldbrew.live.worker.encoder_libraries`) so that no refit pays for them,
and leaves nothing running that a fork would break: OpenBLAS would start its thread
pool on numpy's import and pyarrow's jemalloc a background thread, so both are told not to first
(a refit runs BLAS on one thread anyway). While it imports, a watcher thread checks every
:data:`WATCH_SECONDS` that the service that started it is still its parent, and ends the server
at once when not (a service killed while its server imports; once the server serves forks, it
ends when its "alive" pipe closes). Right before the server's first fork (:func:`_ready`, once
every module it was told to import is in), the watcher is stopped and joined, and everything
imported is moved out of the garbage collector's reach (:func:`gc.freeze`):
a refit forked from the server would otherwise walk the half a million objects of those
libraries at each full collection (issue 29: the refit's database read cost 5.5-7.4 CPU s
inside the fork, against 3.7-5.3 s alone) and write to each of them while walking, so the
pages the fork shares with its server would be copied.

The server's exit skips the interpreter's teardown (it freed the thousands of modules it
imported one by one: 8 s of a busy machine after its service was killed); a refit forked from
it never runs it (a forked child ends with ``os._exit``).

Nothing else should import this module: it changes the process's environment.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import os
import threading

from coldbrew.live.worker import MODULES

WATCH_SECONDS = 0.2

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["JE_ARROW_MALLOC_CONF"] = "background_thread:false"
_service = os.getppid()
_imported = threading.Event()


def _watch() -> None:
    while not _imported.wait(WATCH_SECONDS):
        if os.getppid() != _service:
            os._exit(0)


def _ready() -> None:
    """Before each fork of this process: the first time, the imports are all done (the
    server's list, the encoder's libraries after this module's): stop the watcher (a fork
    must not find a thread) and freeze what was imported. A refit inherits it set."""
    if not _imported.is_set():
        _imported.set()
        _watcher.join()
        gc.freeze()


atexit.register(os._exit, 0)
_watcher = threading.Thread(target=_watch, name="coldbrew-preload", daemon=True)
_watcher.start()
os.register_at_fork(before=_ready)
for _name in MODULES:
    with contextlib.suppress(ImportError):  # an optional library missing: imported on use
        importlib.import_module(_name)
