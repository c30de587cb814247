"""Operating the served model: its version and refits (write key)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from coldbrew.serve import schemas as s
from coldbrew.serve.deps import WRITE, EngineDep

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/refit", dependencies=WRITE, response_model=s.RefitOut)
def refit_status(eng: EngineDep) -> s.RefitOut:
    """The served model version, whether a refit is running, and how the refits went."""
    return s.RefitOut(**eng.model_status())


@router.post("/refit", dependencies=WRITE, response_model=s.RefitOut, status_code=202)
async def refit(eng: EngineDep) -> s.RefitOut:
    """Start a refit now, in another process; requests keep being answered meanwhile.

    The new version is served only if it ranks the newest interactions neither model has seen
    at least as well as the serving one (see docs/service.md)."""
    status = await run_in_threadpool(eng.refit)
    return s.RefitOut(status=status, **eng.model_status())
