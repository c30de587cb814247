"""Users: upsert, read (write key: a user's record is private), forget."""

from __future__ import annotations

from fastapi import APIRouter

from coldbrew.serve import schemas as s
from coldbrew.serve.deps import WRITE, WRITE_ERRORS, WRITE_ID_ERRORS, EngineDep, PathId
from coldbrew.serve.fair import ParsedOffLoop

router = APIRouter(route_class=ParsedOffLoop)  # big bodies: validated off the event loop


@router.post(
    "/users", tags=["users"], dependencies=WRITE, response_model=s.Written, responses=WRITE_ERRORS
)
def upsert_user(body: s.UserIn, eng: EngineDep) -> s.Written:
    eng.upsert_users([s.user(body)])
    return s.Written(written=1)


@router.post(
    "/users/batch",
    tags=["users"],
    dependencies=WRITE,
    response_model=s.Written,
    responses=WRITE_ERRORS,
)
def upsert_users(body: s.UserBatch, eng: EngineDep) -> s.Written:
    """Upsert up to 1,000 users, all or none; an id named twice keeps its last row."""
    users = [s.user(u) for u in body.users]
    eng.upsert_users(users)
    return s.Written(written=len({u.user_id for u in users}))


@router.get(
    "/users/{user_id}",
    tags=["users"],
    dependencies=WRITE,
    response_model=s.UserOut,
    responses=WRITE_ID_ERRORS,
)
def get_user(user_id: PathId, eng: EngineDep) -> s.UserOut:
    user, history = eng.get_user(user_id)
    return s.UserOut(
        id=user.user_id, text=user.text, attributes=user.attributes, interactions=len(history)
    )


@router.delete("/users/{user_id}", tags=["users"], dependencies=WRITE, responses=WRITE_ID_ERRORS)
def forget_user(user_id: PathId, eng: EngineDep) -> dict[str, str]:
    eng.forget_user(user_id)
    return {"forgotten": user_id}
