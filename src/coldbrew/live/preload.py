"""Imported once by the refit server (:mod:`coldbrew.live.worker`), before it forks any refit.

It imports the refit's libraries (:data:`~coldbrew.live.worker.MODULES`) so that no refit pays
for them, and leaves nothing running that a fork would break: OpenBLAS would start its thread
pool on numpy's import and pyarrow's jemalloc a background thread, so both are told not to first
(a refit runs BLAS on one thread anyway). Between imports it checks that the service that
started it is still its parent, and ends at once when not (a service killed while its server
imports; once it serves forks, the server ends when its "alive" pipe closes).

Nothing else should import this module: it changes the process's environment.
"""

from __future__ import annotations

import contextlib
import importlib
import os

from coldbrew.live.worker import MODULES

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["JE_ARROW_MALLOC_CONF"] = "background_thread:false"
_service = os.getppid()
for _name in MODULES:
    if os.getppid() != _service:
        os._exit(0)
    with contextlib.suppress(ImportError):  # an optional library missing: imported on use
        importlib.import_module(_name)
