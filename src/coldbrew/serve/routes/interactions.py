"""Interactions and feedback: record, batch, delete."""

from __future__ import annotations

from fastapi import APIRouter

from coldbrew.live.engine import Engine
from coldbrew.live.errors import BatchError, NotFoundError
from coldbrew.serve import schemas as s
from coldbrew.serve.deps import WRITE, WRITE_ERRORS, WRITE_ID_ERRORS, EngineDep, PathId
from coldbrew.serve.fair import ParsedOffLoop
from coldbrew.store import Interaction

router = APIRouter(route_class=ParsedOffLoop)  # big bodies: validated off the event loop


def _one_interaction(eng: Engine, inter: Interaction) -> None:
    """Record one interaction; its only possible row error is an unknown item (404)."""
    try:
        eng.add_interactions([inter])
    except BatchError as exc:
        raise NotFoundError("item", inter.item_id) from exc


@router.post(
    "/interactions",
    tags=["interactions"],
    dependencies=WRITE,
    response_model=s.Written,
    responses=WRITE_ID_ERRORS,
)
def add_interaction(body: s.InteractionIn, eng: EngineDep) -> s.Written:
    _one_interaction(eng, s.interaction(body))
    return s.Written(written=1)


@router.post(
    "/interactions/batch",
    tags=["interactions"],
    dependencies=WRITE,
    response_model=s.Written,
    responses=WRITE_ERRORS,
)
def add_interactions(body: s.InteractionBatch, eng: EngineDep) -> s.Written:
    """Record up to 1,000 interactions, all or none; an id named twice keeps its last row."""
    interactions = [s.interaction(i) for i in body.interactions]
    eng.add_interactions(interactions)
    return s.Written(written=len({i.interaction_id for i in interactions}))


@router.delete(
    "/interactions/{interaction_id}",
    tags=["interactions"],
    dependencies=WRITE,
    responses=WRITE_ID_ERRORS,
)
def delete_interaction(interaction_id: PathId, eng: EngineDep) -> dict[str, str]:
    eng.delete_interaction(interaction_id)
    return {"deleted": interaction_id}


@router.post(
    "/feedback",
    tags=["interactions"],
    dependencies=WRITE,
    response_model=s.Written,
    responses=WRITE_ID_ERRORS,
)
def feedback(body: s.FeedbackIn, eng: EngineDep) -> s.Written:
    """Record a click/like/purchase/dislike; the user's next recommendations reflect it."""
    _one_interaction(
        eng,
        s.interaction(
            s.InteractionIn(
                id=None,
                user_id=body.user_id,
                item_id=body.item_id,
                event=body.event,
                timestamp=None,
                context=body.context,
            )
        ),
    )
    return s.Written(written=1)
