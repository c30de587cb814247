"""Operations: the web page, health, readiness, Prometheus metrics and what the service holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from coldbrew.live.engine import Engine
from coldbrew.live.errors import DATABASE_RETRY_AFTER
from coldbrew.serve import schemas as s
from coldbrew.serve.deps import READ, EngineDep, MetricsDep, SettingsDep
from coldbrew.serve.pagemeta import user_attribute_names
from coldbrew.serve.problems import error_responses

STATIC = Path(__file__).parent.parent / "static"
router = APIRouter()


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> FileResponse:
    return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon")


@router.get("/healthz", tags=["ops"])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    tags=["ops"],
    response_model=s.ReadyOut,
    responses={503: {"model": s.ReadyOut, "description": "Starting, or the database is down"}},
)
def readyz(request: Request) -> JSONResponse:
    """200 when the index is loaded and the database answers (on SQLite: from the file opened at
    start, still at its path); 503 (same body, with ``Retry-After``) otherwise."""
    # not through get_engine: before the lifespan has loaded it, there is no engine to ask
    eng: Engine | None = getattr(request.app.state, "engine", None)
    if eng is None or not eng.ready:
        status = "starting"
    else:
        status = "ready" if eng.store.ping() else "database unreachable"
    body = {"status": status, **(eng.stats() if eng else {})}
    if status == "ready":
        return JSONResponse(body)
    return JSONResponse(body, status_code=503, headers={"Retry-After": DATABASE_RETRY_AFTER})


@router.get("/metrics", tags=["ops"], include_in_schema=False)
def prometheus(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=metrics.content_type)


@router.get("/meta", tags=["ops"], dependencies=READ, responses=error_responses(401))
def meta(eng: EngineDep, settings: SettingsDep) -> dict[str, Any]:
    return {
        "model": eng.model_name,
        "encoder": eng.query_encoder_name,
        "model_version": eng.info.version,
        "model_kind": eng.info.kind,
        **eng.stats(),
        "item_attributes": eng.attribute_values(),
        # names only: the page offers a box per name; users' values stay in the service
        "user_attributes": user_attribute_names(u.user for u in list(eng.users.values())),
        "reads_need_key": bool(settings.read_key_hashes),
    }
