"""The FastAPI app: thin routes over :class:`~coldbrew.live.engine.Engine`.

Build it with :func:`create_app`; the encoder and the index load once, in the lifespan. The routes
live in :mod:`coldbrew.serve.routes`, their dependencies in :mod:`coldbrew.serve.deps`.
"""

import gc
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline  # /docs and /redoc without a CDN (issue 14)
from starlette.exceptions import HTTPException as StarletteHTTPException

from coldbrew import __version__
from coldbrew.config.settings import Settings
from coldbrew.live.engine import Engine
from coldbrew.live.errors import DATABASE_RETRY_AFTER, BatchError, NotFoundError
from coldbrew.live.fleet import Fleet, is_shared, single_process
from coldbrew.live.follow import LanguageFollower
from coldbrew.live.routing import centred_encoder, serving_encoder
from coldbrew.serve.deps import AuthError
from coldbrew.serve.fair import ReadsInFlight, WriteGate, WritePace, WriteSlots
from coldbrew.serve.guard import Admission, Overloaded, RateLimit
from coldbrew.serve.limits import BodyLimit
from coldbrew.serve.metrics import Metrics, Observe
from coldbrew.serve.problems import allowed_methods, error_responses, validation_body
from coldbrew.serve.routes import ROUTERS
from coldbrew.serve.writethreads import WriteThreads
from coldbrew.store import Store, StoreUnavailable
from coldbrew.text.encoder import Encoder
from coldbrew.text.factory import runtime_encoder
from coldbrew.text.language import AUTO
from coldbrew.text.runtime import onnx_or_torch

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("coldbrew.serve")


def create_app(settings: Settings, *, encoder: Encoder | None = None) -> FastAPI:
    """The service over ``settings.db_url``; pass ``encoder`` to skip building it from settings.

    A models directory that cannot be used is a ``ValueError`` here, before anything starts."""
    settings.check_models_dir()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:

        store = Store(
            settings.db_url, durability=settings.durability, vector_dtype=settings.vector_dtype
        )
        try:
            with single_process(store.url):  # SQLite: one serving process per file
                engine = build_engine(settings, store, encoder)
                app.state.engine = engine
                if engine.fleet is not None:  # catching up with the fleet waits for reads too
                    engine.fleet.step_aside = app.state.pace.step_aside
                metrics.bind(engine)
                log.info(
                    "ready: %s items, %s users, encoder %s, model %s (%s)",
                    *engine.stats().values(),
                    engine.encoder_name,
                    engine.info.version,
                    engine.info.kind,
                )
                try:
                    with start_up_frozen():
                        yield
                finally:
                    app.state.write_threads.close()
                    engine.close()
        finally:
            store.close()

    app = FastAPIOffline(
        title="coldbrew",
        version=__version__,
        description="Cold-start recommendations from pretrained language models. Writes, and "
        "reads that reveal a stored user, need an API key (`X-API-Key` or "
        "`Authorization: Bearer`). Every error body is an `ErrorOut`.",
        lifespan=lifespan,
        responses=error_responses(408, 413, 422, 429, 503),
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.admission = Admission(settings.max_queue)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout)
    app.state.writes = WriteSlots(settings.key_writes, settings.write_queue)
    # outside BodyLimit: a refused write's body is never read
    app.state.pace = WritePace(settings.write_share)
    app.state.write_threads = WriteThreads(settings.write_threads, settings.write_niceness)
    app.add_middleware(
        WriteGate,
        settings=settings,
        slots=app.state.writes,
        pace=app.state.pace,
        threads=app.state.write_threads,
    )
    app.add_middleware(RateLimit, settings=settings)  # outside BodyLimit: refuse before reading
    _install_middleware(app, metrics)
    app.add_middleware(ReadsInFlight, pace=app.state.pace)  # added last: the outermost
    _install_errors(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


FULL_COLLECTION_EVERY = 100
"""Collections of the middle generation between two full ones while the service runs (Python's
default: 10)."""


@contextmanager
def start_up_frozen() -> Iterator[None]:
    """Keep what start-up loaded (the libraries, the encoder, the catalogue) out of the cyclic
    garbage collector's scans (``gc.freeze``) while the service runs. Each full collection
    scanned all of it, holding the GIL: 130-590 ms pauses every few seconds while write keys
    posted 1 MiB batches, which were the by-id and text p99 under attack; 3-50 ms frozen.

    Full collections are also made rarer (:data:`FULL_COLLECTION_EVERY`): what came after
    start-up (a catalogue seeded through the API, the users) still made each one 20-350 ms,
    every few seconds under two write-key abusers, and a read that met one waited for all of
    it. Young collections, which free most cycles, run as often as before."""
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], FULL_COLLECTION_EVERY)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def build_engine(
    settings: Settings, store: Store, encoder: Encoder | None, incoming: Sequence[str] = ()
) -> Engine:
    """The loaded engine; over PostgreSQL, a replica of the fleet on that database.

    ``incoming``: item texts an import is about to store (they count for the script centring
    chosen now, so the service started after the import keeps its vectors)."""

    spec = serving_encoder(settings.encoder, store)  # issue 14: language routing
    engine = Engine(
        store,
        centred_encoder(  # issue 14: per-script centring of a mixed catalogue
            onnx_or_torch(encoder, settings.encoder_runtime)
            if encoder is not None
            else runtime_encoder(spec, runtime=settings.encoder_runtime),
            store,
            incoming,
        ),
        index=settings.index,
        graph_path=settings.graph_path(),
        serving=settings.engine_serving(),
        fleet=Fleet(store) if is_shared(store) else None,
        runtime=settings.encoder_runtime,  # refits and Ray workers rebuild the encoder on it
    )
    alone = engine.fleet is None and not settings.serving.ray
    if settings.encoder == AUTO and encoder is None and alone:

        def make(spec: str) -> Encoder:
            return centred_encoder(runtime_encoder(spec, runtime=settings.encoder_runtime), store)

        engine.follower = LanguageFollower(engine, spec, make)  # issue 27: follow the catalogue
    return engine.load()


def _install_middleware(app: FastAPI, metrics: Metrics) -> None:
    app.add_middleware(Observe, metrics=metrics)


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
        return JSONResponse(validation_body(exc.errors()), status_code=422)

    @app.exception_handler(StoreUnavailable)
    async def unavailable(_: Request, exc: StoreUnavailable) -> JSONResponse:
        log.warning("database unavailable: %s", exc)  # the error's kind only, never its values
        retry = {"Retry-After": DATABASE_RETRY_AFTER}
        return JSONResponse({"detail": str(exc)}, status_code=503, headers=retry)

    @app.exception_handler(Overloaded)
    async def overloaded(_: Request, exc: Overloaded) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI could not decode the body (not UTF-8 JSON)
            undecodable = {"type": "json_invalid", "loc": ("body",), "ctx": {"error": exc.detail}}
            return JSONResponse(validation_body([undecodable]), status_code=422)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only the first route's
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
