"""The FastAPI app: thin routes over :class:`~coldbrew.serve.engine.Engine`.

Build it with :func:`create_app`; the encoder and the index load once, in the lifespan.
"""

import hashlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline  # /docs and /redoc without a CDN (issue 14)
from starlette.concurrency import run_in_threadpool

from coldbrew import __version__
from coldbrew.serve import schemas as s
from coldbrew.serve.engine import Engine, Recommendation, now
from coldbrew.serve.engine import Query as EngineQuery
from coldbrew.serve.errors import BatchError, NotFoundError
from coldbrew.serve.limits import BodyLimit
from coldbrew.serve.metrics import Metrics
from coldbrew.serve.pagemeta import user_attribute_values
from coldbrew.serve.relevance import relevance
from coldbrew.serve.routing import centred_encoder, serving_encoder
from coldbrew.serve.settings import Settings
from coldbrew.store import Interaction, Item, Store, User
from coldbrew.text.encoder import Encoder
from coldbrew.text.language import script_warnings

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("coldbrew.serve")


class AuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


def _presented_key(x_api_key: str | None, authorization: str | None) -> str | None:
    if x_api_key:
        return x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def create_app(settings: Settings, *, encoder: Encoder | None = None) -> FastAPI:
    """The service over ``settings.db_url``; pass ``encoder`` to skip building it from settings."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from coldbrew.text.factory import make_encoder
        from coldbrew.text.onnx import onnx_or_torch

        store = Store(settings.db_url)
        spec = serving_encoder(settings.encoder, store)  # issue 14: language routing
        engine = Engine(
            store,
            centred_encoder(  # issue 14: per-script centring of a mixed catalogue
                onnx_or_torch(encoder or make_encoder(spec), settings.encoder_runtime), store
            ),
            index=settings.index,
            graph_path=settings.graph_path(),
        ).load()
        app.state.engine = engine
        metrics.bind(engine)
        log.info("ready: %s items, %s users, model %s", *engine.stats().values(), engine.model)
        try:
            yield
        finally:
            engine.close()
            store.close()

    app = FastAPIOffline(
        title="coldbrew",
        version=__version__,
        description="Cold-start recommendations from pretrained language models. Writes need an "
        "API key (`X-API-Key` or `Authorization: Bearer`).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    _install_middleware(app, metrics)
    _install_errors(app)
    _install_routes(app, settings, metrics)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _install_middleware(app: FastAPI, metrics: Metrics) -> None:
    app.add_middleware(Observe, metrics=metrics)


class Observe:
    """Count and time every request by route template, as plain ASGI (no per-request task).

    Only the method, route template and status are recorded: bodies (user text) never are.
    """

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def observed_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            seconds = time.perf_counter() - start
            self.metrics.observe(scope["method"], path, status, seconds)
            log.debug("%s %s %s %.1fms", scope["method"], path, status, seconds * 1e3)


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(AuthError)
    async def auth_error(_: Request, exc: AuthError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(BatchError)
    async def batch_error(_: Request, exc: BatchError) -> JSONResponse:
        errors = [
            {"index": e.index, "id": e.ident, "field": e.field, "message": e.message}
            for e in exc.errors
        ]
        detail = f"{exc}: " + "; ".join(f"row {e['index']}: {e['message']}" for e in errors[:5])
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(ValueError)
    async def value_error(_: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ())]
            index = next((int(p) for p in loc if p.isdigit()), -1)
            errors.append(
                {"index": index, "id": "", "field": ".".join(loc), "message": err.get("msg", "")}
            )
        detail = "invalid request: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)


def _recommendation(rec: Recommendation) -> s.RecommendationOut:
    exp = rec.explanation
    return s.RecommendationOut(
        item_id=rec.item.item_id,
        score=round(rec.score, 6),
        title=rec.item.title,
        description=rec.item.description,
        attributes=rec.item.attributes,
        explanation=None
        if exp is None
        else s.ExplanationOut(
            text=exp.text,
            parts=exp.parts,
            words=[s.WordOut(word=w, similarity=v) for w, v in exp.words],
            liked=[s.LikedOut(item_id=i, title=t, similarity=v) for i, t, v in exp.liked],
        ),
    )


def _interaction(body: s.InteractionIn) -> Interaction:
    timestamp = body.timestamp if body.timestamp is not None else now()
    ident = (
        body.id
        or hashlib.sha1(
            f"{body.user_id}\x1f{body.item_id}\x1f{body.event}\x1f{timestamp!r}".encode()
        ).hexdigest()
    )
    return Interaction(ident, body.user_id, body.item_id, body.event, timestamp, body.value)


def _item(body: s.ItemIn) -> Item:
    return Item(body.id, body.title, body.description, dict(body.attributes))


def _install_routes(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    # The dependencies never block, so they are async: FastAPI runs a plain ``def`` dependency
    # in its thread pool, one hop per dependency per request.
    async def engine(request: Request) -> Engine:
        found: Engine = request.app.state.engine
        return found

    async def key(
        x_api_key: Annotated[str | None, Header()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> str | None:
        return _presented_key(x_api_key, authorization)

    async def writer(presented: Annotated[str | None, Depends(key)]) -> None:
        if not settings.write_key_hashes:
            raise AuthError(403, "writes are disabled: no API keys configured (COLDBREW_API_KEYS)")
        if presented is None:
            raise AuthError(401, "this endpoint needs an API key (X-API-Key header)")
        if not settings.can_write(presented):
            raise AuthError(403, "the API key is not valid for writes")

    async def reader(presented: Annotated[str | None, Depends(key)]) -> None:
        if not settings.can_read(presented):
            raise AuthError(401, "reads need an API key (X-API-Key header)")

    Eng = Annotated[Engine, Depends(engine)]
    write = [Depends(writer)]
    read = [Depends(reader)]

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)  # issue 14: no 404 for the icon
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon")

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz(request: Request) -> JSONResponse:
        eng: Engine | None = getattr(request.app.state, "engine", None)
        ok = eng is not None and eng.ready and eng.store.ping()
        body = {"status": "ready" if ok else "starting", **(eng.stats() if eng else {})}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.get("/meta", tags=["ops"], dependencies=read)
    def meta(eng: Eng) -> dict[str, Any]:
        return {
            "model": eng.model,
            **eng.stats(),
            "item_attributes": eng.attribute_values(),
            # issue 14: the page's age/gender/occupation choices come from the users stored
            "user_attributes": user_attribute_values(u.user for u in list(eng.users.values())),
            "reads_need_key": bool(settings.read_key_hashes),
        }

    # ---- items ----------------------------------------------------------------------------
    @app.post("/items", tags=["items"], dependencies=write, response_model=s.Written)
    def upsert_item(body: s.ItemIn, eng: Eng) -> s.Written:
        eng.upsert_items([_item(body)])
        return s.Written(written=1)

    @app.post("/items/batch", tags=["items"], dependencies=write, response_model=s.Written)
    def upsert_items(body: s.ItemBatch, eng: Eng) -> s.Written:
        eng.upsert_items([_item(i) for i in body.items])
        return s.Written(written=len(body.items))

    @app.get("/items/{item_id}", tags=["items"], dependencies=read, response_model=s.ItemOut)
    def get_item(item_id: str, eng: Eng) -> s.ItemOut:
        item = eng.get_item(item_id)
        return s.ItemOut(
            id=item.item_id,
            title=item.title,
            description=item.description,
            attributes=item.attributes,
        )

    @app.delete("/items/{item_id}", tags=["items"], dependencies=write)
    def delete_item(item_id: str, eng: Eng) -> dict[str, str]:
        eng.delete_item(item_id)
        return {"deleted": item_id}

    @app.get(
        "/items/{item_id}/similar",
        tags=["recommend"],
        dependencies=read,
        response_model=s.RecommendOut,
    )
    def similar(
        item_id: str, eng: Eng, k: Annotated[int, Query(ge=1, le=100)] = 10
    ) -> s.RecommendOut:
        return s.RecommendOut(items=[_recommendation(r) for r in eng.similar_items(item_id, k)])

    # ---- users ----------------------------------------------------------------------------
    @app.post("/users", tags=["users"], dependencies=write, response_model=s.Written)
    def upsert_user(body: s.UserIn, eng: Eng) -> s.Written:
        eng.upsert_users([User(body.id, body.text, dict(body.attributes))])
        return s.Written(written=1)

    @app.post("/users/batch", tags=["users"], dependencies=write, response_model=s.Written)
    def upsert_users(body: s.UserBatch, eng: Eng) -> s.Written:
        eng.upsert_users([User(u.id, u.text, dict(u.attributes)) for u in body.users])
        return s.Written(written=len(body.users))

    @app.get("/users/{user_id}", tags=["users"], dependencies=write, response_model=s.UserOut)
    def get_user(user_id: str, eng: Eng) -> s.UserOut:
        user, history = eng.get_user(user_id)
        return s.UserOut(
            id=user.user_id, text=user.text, attributes=user.attributes, interactions=len(history)
        )

    @app.delete("/users/{user_id}", tags=["users"], dependencies=write)
    def forget_user(user_id: str, eng: Eng) -> dict[str, str]:
        eng.forget_user(user_id)
        return {"forgotten": user_id}

    # ---- interactions and feedback --------------------------------------------------------
    def _one_interaction(eng: Engine, inter: Interaction) -> None:
        try:
            eng.add_interactions([inter])
        except BatchError as exc:
            raise NotFoundError("item", inter.item_id) from exc

    @app.post("/interactions", tags=["interactions"], dependencies=write, response_model=s.Written)
    def add_interaction(body: s.InteractionIn, eng: Eng) -> s.Written:
        _one_interaction(eng, _interaction(body))
        return s.Written(written=1)

    @app.post(
        "/interactions/batch", tags=["interactions"], dependencies=write, response_model=s.Written
    )
    def add_interactions(body: s.InteractionBatch, eng: Eng) -> s.Written:
        eng.add_interactions([_interaction(i) for i in body.interactions])
        return s.Written(written=len(body.interactions))

    @app.delete("/interactions/{interaction_id}", tags=["interactions"], dependencies=write)
    def delete_interaction(interaction_id: str, eng: Eng) -> dict[str, str]:
        eng.delete_interaction(interaction_id)
        return {"deleted": interaction_id}

    @app.post("/feedback", tags=["interactions"], dependencies=write, response_model=s.Written)
    def feedback(body: s.FeedbackIn, eng: Eng) -> s.Written:
        """Record a click/like/purchase/dislike; the user's next recommendations reflect it."""
        _one_interaction(
            eng,
            _interaction(
                s.InteractionIn(
                    id=None,
                    user_id=body.user_id,
                    item_id=body.item_id,
                    event=body.event,
                    timestamp=None,
                )
            ),
        )
        return s.Written(written=1)

    # ---- recommending ---------------------------------------------------------------------
    @app.post("/recommend", tags=["recommend"], dependencies=read, response_model=s.RecommendOut)
    async def recommend(body: s.RecommendIn, eng: Eng) -> s.RecommendOut:
        """Recommend for a known user, free text, attributes, liked items, or any mix."""
        if not (body.user_id or (body.text and body.text.strip()) or body.attributes or body.liked):
            raise ValueError("describe the user: give user_id, text, attributes or liked")
        query = EngineQuery(
            user_id=body.user_id,
            text=body.text,
            attributes=body.attributes,
            liked=tuple(body.liked),
            k=body.k,
            filters=body.filters,
            allowed_ids=None if body.allowed_ids is None else tuple(body.allowed_ids),
            excluded_ids=tuple(body.excluded_ids),
            exclude_seen=body.exclude_seen,
            explain=body.explain,
        )
        # From stored vectors with a quick index and a free lock: answered here on the event
        # loop, since a hop to the thread pool and back costs more than the search under load
        # (the GIL). Anything that encodes, scans, or would wait for a write: a worker thread.
        found = eng.recommend_now(query)
        if found is None:
            found = await run_in_threadpool(eng.recommend, query)
        warnings = script_warnings(eng.model, [body.text])  # issue 14: unreadable script
        items = [_recommendation(r) for r in found]
        if body.relevance:  # issue 14: readable scores, on request
            shares = await run_in_threadpool(relevance, eng, query, found)
            items = [i.model_copy(update={"relevance": p}) for i, p in zip(items, shares)]
        return s.RecommendOut(items=items, warnings=warnings)
