"""The service follows its catalogue's language (issue 27): with ``--encoder auto``, a service
that started on an empty (or English) database and is then sent a Chinese catalogue switches to
the multilingual encoder without a restart.

After each item write, :class:`LanguageFollower` reads the language of (a sample of) the
catalogue; when it wants another bundled encoder than the one serving, a background thread builds
that encoder, re-encodes every item with it and has the engine swap index and model under its
write lock (:meth:`~coldbrew.live.engine.Engine.reencode`), as a refit's model is swapped in.
Meanwhile requests are answered by the old encoder, with its warning for a script it cannot read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from coldbrew.text.encoder import Encoder
from coldbrew.text.language import AUTO, detect_language, encoder_for, is_cjk


class Reencodes(Protocol):
    """What the follower needs of the running recommender: a sample of its item texts, the name
    of the encoder it serves with, and a way to switch encoders."""

    encoder_name: str

    def sample_texts(self, n: int) -> list[str]: ...

    def reencode(self, encoder: Encoder) -> None: ...


log = logging.getLogger("coldbrew.serve")
SAMPLE = 2_000
"""Items whose text decides the catalogue's language (evenly spread over it)."""


class LanguageFollower:
    """Switch ``engine`` to the bundled encoder its catalogue's language wants.

    ``spec``: the encoder spec serving now (``default`` or ``multilingual``); ``make``: the
    service's encoder for a spec (runtime and script centring as at start)."""

    def __init__(self, engine: Reencodes, spec: str, make: Callable[[str], Encoder]) -> None:
        self.engine, self.spec, self.make = engine, spec, make
        self._thread: threading.Thread | None = None
        self._failed: set[str] = set()  # not tried again (e.g. the encoder is not installed)

    @property
    def switching(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def check(self, written: Sequence[str]) -> None:
        """After a write of items with these texts: start the switch if the catalogue now
        wants another encoder. Only a write that could move the catalogue's language away from
        the serving encoder's (CJK items to MiniLM, other items to the multilingual encoder)
        reads the catalogue."""
        if self.switching or all(is_cjk(t) == (self.spec != "default") for t in written):
            return
        wanted = encoder_for(AUTO, detect_language(self.engine.sample_texts(SAMPLE)))
        if wanted == self.spec or wanted in self._failed:
            return
        log.info("the catalogue's language wants the %s encoder: re-encoding", wanted)
        self._thread = threading.Thread(
            target=self._switch, args=(wanted,), name="coldbrew-language", daemon=True
        )
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        """Until a switch in progress has ended (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _switch(self, spec: str) -> None:
        try:
            self.engine.reencode(self.make(spec))
        except Exception as exc:  # any failure: the old encoder keeps serving, and says why
            self._failed.add(spec)
            log.warning("no switch to the %s encoder (%s); %s serves on", spec, exc, self.spec)
            return
        self.spec = spec
        log.info("now serving with the %s encoder (%s)", spec, self.engine.encoder_name)
