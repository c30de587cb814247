"""The service's dependencies, at module level so tests can swap them.

Every route reaches the engine, the settings and the access checks through these functions, so
``app.dependency_overrides[get_engine] = ...`` (or ``get_settings``, ``require_writer``,
``require_reader``) replaces them for one app. They read what :func:`~coldbrew.serve.app.create_app`
put on ``app.state``.

They never block, so they are ``async``: FastAPI runs a plain ``def`` dependency in its thread
pool, one hop per dependency per request.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request
from fastapi.params import Depends as DependsParam

from coldbrew.config.settings import Settings
from coldbrew.live.engine import Engine
from coldbrew.serve.guard import Admission, presented_key
from coldbrew.serve.metrics import Metrics
from coldbrew.serve.problems import error_responses
from coldbrew.serve.schemas import ID_NFC, ID_PATTERN, MAX_ID_CHARS


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


async def get_admission(request: Request) -> Admission:
    """The bounded queue in front of the encoder."""
    found: Admission = request.app.state.admission
    return found


async def get_metrics(request: Request) -> Metrics:
    """The app's own Prometheus metrics."""
    found: Metrics = request.app.state.metrics
    return found


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
AdmissionDep = Annotated[Admission, Depends(get_admission)]
# an id in a path: the same pattern as in a body, so the schema and the server agree
PathId = Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN), ID_NFC]


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


def may_quote_profile(settings: Settings, presented: str | None, user_id: str | None) -> bool:
    """Check a read that reveals a stored user; say whether its explanations may quote them.

    Naming a stored user needs a key (401 without one, 403 with a wrong one), checked before
    the user is looked up, so to a caller without a key an unknown id and a forbidden one look
    the same. A read key may recommend for the user; only a write key (which may read the whole
    profile anyway) gets explanations quoting their stored words, attributes and liked items.
    """
    if user_id is None:
        return True  # nothing stored is read: explanations quote only what the caller sent
    if presented is None:
        raise AuthError(401, "recommending for a stored user_id needs an API key (X-API-Key)")
    if not settings.knows(presented):
        raise AuthError(403, "the API key is not valid")
    return settings.can_write(presented)


WRITE: list[DependsParam] = [Depends(require_writer)]
READ: list[DependsParam] = [Depends(require_reader)]
# the errors each kind of route can answer with, for the OpenAPI document
WRITE_ERRORS: dict[int | str, dict[str, Any]] = error_responses(401, 403, 422)
WRITE_ID_ERRORS: dict[int | str, dict[str, Any]] = error_responses(401, 403, 404, 422)
READ_ERRORS: dict[int | str, dict[str, Any]] = error_responses(401, 422)
READ_ID_ERRORS: dict[int | str, dict[str, Any]] = error_responses(401, 404, 422)
