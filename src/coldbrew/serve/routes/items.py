"""Items: upsert, read, delete, and the items similar to one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from coldbrew.serve import schemas as s
from coldbrew.serve.deps import (
    READ,
    READ_ID_ERRORS,
    WRITE,
    WRITE_ERRORS,
    WRITE_ID_ERRORS,
    EngineDep,
    PathId,
)
from coldbrew.serve.fair import ParsedOffLoop

router = APIRouter(route_class=ParsedOffLoop)  # big bodies: validated off the event loop


@router.post(
    "/items", tags=["items"], dependencies=WRITE, response_model=s.Written, responses=WRITE_ERRORS
)
def upsert_item(body: s.ItemIn, eng: EngineDep) -> s.Written:
    eng.upsert_items([s.item(body)])
    return s.Written(written=1)


@router.post(
    "/items/batch",
    tags=["items"],
    dependencies=WRITE,
    response_model=s.Written,
    responses=WRITE_ERRORS,
)
def upsert_items(body: s.ItemBatch, eng: EngineDep) -> s.Written:
    """Upsert up to 1,000 items, all or none; an id named twice keeps its last row."""
    items = [s.item(i) for i in body.items]
    eng.upsert_items(items)
    return s.Written(written=len({i.item_id for i in items}))


@router.get(
    "/items/{item_id}",
    tags=["items"],
    dependencies=READ,
    response_model=s.ItemOut,
    responses=READ_ID_ERRORS,
)
def get_item(item_id: PathId, eng: EngineDep) -> s.ItemOut:
    return s.item_out(eng.get_item(item_id))


@router.delete("/items/{item_id}", tags=["items"], dependencies=WRITE, responses=WRITE_ID_ERRORS)
def delete_item(item_id: PathId, eng: EngineDep) -> dict[str, str]:
    eng.delete_item(item_id)
    return {"deleted": item_id}


# under /items, so it lives here (and keeps its place in the OpenAPI document); tagged recommend
@router.get(
    "/items/{item_id}/similar",
    tags=["recommend"],
    dependencies=READ,
    response_model=s.RecommendOut,
    responses=READ_ID_ERRORS,
)
def similar(
    item_id: PathId, eng: EngineDep, k: Annotated[int, Query(ge=1, le=100)] = 10
) -> s.RecommendOut:
    return s.recommend_out(eng.similar_items(item_id, k))
