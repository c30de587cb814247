"""The service's dependencies, at module level so tests can swap them.

Every route reaches the engine, the settings and the access checks through these functions, so
``app.dependency_overrides[get_engine] = ...`` (or ``get_settings``, ``require_writer``,
``require_reader``) replaces them for one app. They read what :func:`~coldbrew.serve.app.create_app`
put on ``app.state``.

They never block, so they are ``async``: FastAPI runs a plain ``def`` dependency in its thread
pool, one hop per dependency per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.params import Depends as DependsParam

from coldbrew.serve.engine import Engine
from coldbrew.serve.metrics import Metrics
from coldbrew.serve.settings import Settings


class AuthError(Exception):
    """A request lacks the key it needs (HTTP ``status``: 401 or 403)."""

    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


async def get_engine(request: Request) -> Engine:
    """The engine the lifespan loaded."""
    found: Engine = request.app.state.engine
    return found


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    found: Settings = request.app.state.settings
    return found


async def get_metrics(request: Request) -> Metrics:
    """The app's own Prometheus metrics."""
    found: Metrics = request.app.state.metrics
    return found


def presented_key(x_api_key: str | None, authorization: str | None) -> str | None:
    """The key from ``X-API-Key``, else from ``Authorization: Bearer``; ``None`` without one."""
    if x_api_key:
        return x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


async def get_key(
    x_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> str | None:
    """The API key the request presents, if any."""
    return presented_key(x_api_key, authorization)


SettingsDep = Annotated[Settings, Depends(get_settings)]
KeyDep = Annotated[str | None, Depends(get_key)]
EngineDep = Annotated[Engine, Depends(get_engine)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


async def require_writer(settings: SettingsDep, presented: KeyDep) -> None:
    """Let the request through only with a write key (403 when writes are off, 401 without)."""
    if not settings.write_key_hashes:
        raise AuthError(403, "writes are disabled: no API keys configured (COLDBREW_API_KEYS)")
    if presented is None:
        raise AuthError(401, "this endpoint needs an API key (X-API-Key header)")
    if not settings.can_write(presented):
        raise AuthError(403, "the API key is not valid for writes")


async def require_reader(settings: SettingsDep, presented: KeyDep) -> None:
    """Let the request through if reads are open, or with a read or write key (401 otherwise)."""
    if not settings.can_read(presented):
        raise AuthError(401, "reads need an API key (X-API-Key header)")


WRITE: list[DependsParam] = [Depends(require_writer)]
READ: list[DependsParam] = [Depends(require_reader)]
