"""What a training run says while it runs: one line per phase, on stderr, beside tqdm's bars.

Each line carries the seconds since this module was first imported (``coldbrew train``
imports it before anything heavy), so a slow phase shows where the time went.
"""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm

_STARTED = time.perf_counter()


def say(message: str, enabled: bool = True) -> None:
    """Print ``message`` as a phase line on stderr (above any running progress bar)."""
    if enabled:
        tqdm.write(f"[{time.perf_counter() - _STARTED:6.1f}s] {message}", file=sys.stderr)
