"""Recommending for a user, free text, attributes, liked items, or any mix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from coldbrew.config.settings import Settings
from coldbrew.live.answers import Answer
from coldbrew.live.answers import Query as EngineQuery
from coldbrew.live.engine import Engine
from coldbrew.live.errors import NotFoundError
from coldbrew.live.relevance import relevance
from coldbrew.models.query import UserQuery
from coldbrew.serve import schemas as s
from coldbrew.serve.deps import (
    READ,
    AdmissionDep,
    AuthError,
    EngineDep,
    KeyDep,
    SettingsDep,
    may_quote_profile,
)
from coldbrew.serve.problems import error_responses
from coldbrew.text.language import script_warnings

router = APIRouter()
T = TypeVar("T")


def _query(body: s.RecommendIn, quote_profile: bool) -> EngineQuery:
    described = body.user_id or (body.text and body.text.strip()) or body.attributes
    if not (described or body.liked or body.context):
        raise ValueError("describe the user: give user_id, text, attributes, liked or context")
    user = UserQuery(
        user_id=body.user_id,
        text=body.text,
        attributes=body.attributes,
        liked=tuple(body.liked),
        context=body.context,
    )
    return EngineQuery(
        user,
        k=body.k,
        filters=body.filters,
        allowed_ids=None if body.allowed_ids is None else tuple(body.allowed_ids),
        excluded_ids=tuple(body.excluded_ids),
        exclude_seen=body.exclude_seen,
        explain=body.explain,
        diversity=body.diversity,
        novelty=body.novelty,
        quote_profile=quote_profile,
    )


@router.post(
    "/recommend",
    tags=["recommend"],
    dependencies=READ,
    response_model=s.RecommendOut,
    responses=error_responses(401, 403, 404, 422),
)
async def recommend(
    body: s.RecommendIn,
    eng: EngineDep,
    settings: SettingsDep,
    presented: KeyDep,
    admission: AdmissionDep,
) -> s.RecommendOut:
    """Recommend for a known user, free text, attributes, liked items, or any mix.

    Naming a stored ``user_id`` needs an API key; explanations quote the stored profile only
    for a write key, and otherwise only what the request itself sent.
    """
    query = _checked(body, settings, presented)
    # From stored vectors with a quick index and a free lock: answered here on the event
    # loop, since a hop to the thread pool and back costs more than the search under load
    # (the GIL). Anything that encodes, scans, or would wait for a write: a worker thread.
    found = eng.recommend_now(query)
    if found is None:
        async with admission.slot():  # full: 503 at once, not a place at the end of a queue
            found = await run_in_threadpool(eng.recommend, query)
    return await _answer_out(eng, body, query, found)


async def _answer_out(
    eng: Engine, body: s.RecommendIn, query: EngineQuery, found: Answer
) -> s.RecommendOut:
    """The answer to one query as sent (with its script warnings, and its items' relevance
    when the body asked for it: one more ranking of the catalogue)."""
    out = s.recommend_out(found, script_warnings(eng.query_encoder_name, [body.text]))
    if body.relevance:
        shares = await run_in_threadpool(relevance, eng, query, found)
        out.items = [i.model_copy(update={"relevance": p}) for i, p in zip(out.items, shares)]
    return out


@router.post(
    "/recommend/batch",
    tags=["recommend"],
    dependencies=READ,
    response_model=s.RecommendBatchOut,
    responses=error_responses(401, 403, 404, 422),
)
async def recommend_batch(
    body: s.RecommendBatchIn,
    eng: EngineDep,
    settings: SettingsDep,
    presented: KeyDep,
    admission: AdmissionDep,
) -> s.RecommendBatchOut:
    """Up to 32 queries in one request, each as ``POST /recommend`` takes it (its own user,
    text, liked items, context, filters and controls), answered in the order sent.

    The batch is answered whole or not at all: a query that cannot be (an unknown user, a
    stored ``user_id`` without a key, nothing describing the user) fails the request with the
    status ``POST /recommend`` would give it and its place in ``detail`` (``queries[2]: ...``).
    The queries share one admission slot and one worker thread.
    """
    queries = [_at(i, _checked, q, settings, presented) for i, q in enumerate(body.queries)]
    async with admission.slot():
        found = await run_in_threadpool(_answers, eng, queries)
    results = [
        await _answer_out(eng, sent, query, answer)
        for sent, query, answer in zip(body.queries, queries, found)
    ]
    return s.RecommendBatchOut(results=results)


def _checked(body: s.RecommendIn, settings: Settings, presented: str | None) -> EngineQuery:
    """The engine's query for ``body``, after the key check a stored user needs."""
    return _query(body, may_quote_profile(settings, presented, body.user_id))


def _answers(eng: Engine, queries: list[EngineQuery]) -> list[Answer]:
    return [_at(i, eng.recommend, q) for i, q in enumerate(queries)]


def _at(index: int, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)``, its error naming the batch's query ``index`` it came from."""
    where = f"queries[{index}]"
    try:
        return work(*args)
    except NotFoundError as exc:
        raise exc.at(where) from exc
    except AuthError as exc:
        raise AuthError(exc.status, f"{where}: {exc.message}") from exc
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc
