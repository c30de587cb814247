"""Recommending for a user, free text, attributes, liked items, or any mix."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from coldbrew.serve import schemas as s
from coldbrew.serve.deps import (
    READ,
    AdmissionDep,
    EngineDep,
    KeyDep,
    SettingsDep,
    may_quote_profile,
)
from coldbrew.serve.engine import Query as EngineQuery
from coldbrew.serve.problems import error_responses
from coldbrew.serve.relevance import relevance
from coldbrew.serve.routes import convert
from coldbrew.text.language import script_warnings

router = APIRouter()


def _query(body: s.RecommendIn, quote_profile: bool) -> EngineQuery:
    described = body.user_id or (body.text and body.text.strip()) or body.attributes
    if not (described or body.liked or body.context):
        raise ValueError("describe the user: give user_id, text, attributes, liked or context")
    return EngineQuery(
        user_id=body.user_id,
        text=body.text,
        attributes=body.attributes,
        liked=tuple(body.liked),
        context=body.context,
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
    query = _query(body, may_quote_profile(settings, presented, body.user_id))
    # From stored vectors with a quick index and a free lock: answered here on the event
    # loop, since a hop to the thread pool and back costs more than the search under load
    # (the GIL). Anything that encodes, scans, or would wait for a write: a worker thread.
    found = eng.recommend_now(query)
    if found is None:
        async with admission.slot():  # full: 503 at once, not a place at the end of a queue
            found = await run_in_threadpool(eng.recommend, query)
    out = convert.recommend_out(found, script_warnings(eng.query_encoder_name, [body.text]))
    if body.relevance:  # readable scores, on request: one more ranking of the catalogue
        shares = await run_in_threadpool(relevance, eng, query, found)
        out.items = [i.model_copy(update={"relevance": p}) for i, p in zip(out.items, shares)]
    return out
