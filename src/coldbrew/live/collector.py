"""The cyclic garbage collector during a refit's database read (issue 29).

A refit reads every event into records (ml-1m: 487,650 interactions, each a small object the
collector tracks). While they pile up, the collector's young collections keep walking them and
promoting them, and each full collection walks all of them again: in a throwaway measure of
575,000 records built alone, 0.80-0.84 CPU s with the collector on against 0.51-0.56 s paused.
The records hold no reference cycles, so pausing the collector while they are read frees
nothing less. Once read, they live until the refit ends; in a refit process of its own (forked
from the refit server, :mod:`~coldbrew.live.worker`), :func:`settled` also moves them out of the
collector's reach (:func:`gc.freeze`, as the server did with its imports,
:mod:`~coldbrew.live.preload`), so the full collections of the rest of the refit do not walk
them either.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def settled(freeze: bool = False) -> Iterator[None]:
    """No cyclic garbage collection while the block runs (the collector is turned on again
    after it, if it was on); with ``freeze``, every object alive at the block's end is then
    left out of later collections (:func:`gc.freeze`).

    Freeze only in a process that ends with its job (a forked refit): frozen objects that later
    form unreachable cycles are never collected, and the freeze cannot be undone for them
    alone (:func:`gc.unfreeze` would also thaw what a fork server froze before)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        if freeze:
            gc.freeze()
    finally:
        if enabled:
            gc.enable()
