"""pandas, imported where a frame is first made or read rather than where a module is imported.

Every module that builds frames reads pandas as ``from coldbrew.data.frames import pd``: a
service restarted over its saved index builds none, so it never imports pandas, nor pyarrow,
which pandas imports with it (~26 MB of libraries resident at a million items, issue 29). Type
checkers see the real module.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any


class _OnFirstUse:
    """A module imported at the first read of one of its attributes."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        module = sys.modules.get(self._name) or importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<{self._name}, imported at its first use>"


if TYPE_CHECKING:
    import pandas as pd
else:
    pd = _OnFirstUse("pandas")

__all__ = ["pd"]
