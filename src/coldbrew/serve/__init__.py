"""The HTTP service: ``create_app(Settings.from_env())``; needs ``pip install coldbrew[serve]``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from coldbrew.config.settings import Settings


def create_app(settings: Settings, **kwargs: Any) -> FastAPI:
    try:
        from coldbrew.serve.app import create_app as _create
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            f"the service needs its extra: pip install 'coldbrew[serve]' ({exc})"
        ) from exc
    return _create(settings, **kwargs)
