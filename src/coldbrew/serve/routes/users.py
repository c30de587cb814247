"""Users: upsert, read (write key: a user's record is private), forget."""

from __future__ import annotations

from fastapi import APIRouter

from coldbrew.serve import schemas as s
from coldbrew.serve.deps import WRITE, EngineDep
from coldbrew.serve.routes import convert

router = APIRouter()


@router.post("/users", tags=["users"], dependencies=WRITE, response_model=s.Written)
def upsert_user(body: s.UserIn, eng: EngineDep) -> s.Written:
    eng.upsert_users([convert.user(body)])
    return s.Written(written=1)


@router.post("/users/batch", tags=["users"], dependencies=WRITE, response_model=s.Written)
def upsert_users(body: s.UserBatch, eng: EngineDep) -> s.Written:
    eng.upsert_users([convert.user(u) for u in body.users])
    return s.Written(written=len(body.users))


@router.get("/users/{user_id}", tags=["users"], dependencies=WRITE, response_model=s.UserOut)
def get_user(user_id: str, eng: EngineDep) -> s.UserOut:
    user, history = eng.get_user(user_id)
    return s.UserOut(
        id=user.user_id, text=user.text, attributes=user.attributes, interactions=len(history)
    )


@router.delete("/users/{user_id}", tags=["users"], dependencies=WRITE)
def forget_user(user_id: str, eng: EngineDep) -> dict[str, str]:
    eng.forget_user(user_id)
    return {"forgotten": user_id}
