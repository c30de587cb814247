"""``coldbrew serve``: the HTTP API and the try-it page over a database."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from typing import Any

from coldbrew.config.settings import Settings, all_declared
from coldbrew.config.table import add_flags
from coldbrew.data import load_dataset
from coldbrew.data.cleaning import OnBadRows
from coldbrew.data.schema import Dataset
from coldbrew.text.encoder import Encoder


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the HTTP API and the try-it page",
        description="Serve recommendations over HTTP (OpenAPI docs at /docs, page at /). Settings "
        "come from the environment (COLDBREW_API_KEYS, COLDBREW_READ_KEYS, ...); flags win.",
    )
    add_server_args(parser)
    add_flags(parser)
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
    parser.set_defaults(func=run)


def add_server_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")


def serve(
    db: str | None,
    encoder: Encoder | str | None,
    host: str,
    port: int,
    *,
    announce: str = "",
    data: Dataset | None = None,
    **overrides: Any,
) -> None:
    """Start the service; without COLDBREW_API_KEYS a one-off write key is made and printed.

    ``data``: a dataset loaded into the database first (:func:`import_dataset`);
    ``overrides``: any other setting by its name (:class:`~coldbrew.config.settings.Settings`
    and its ``serving``: ``index``, ``encoder_runtime``, ``model``, ``refit_every``, ...);
    ``None`` values, ``db`` and a string ``encoder`` included, leave the environment's."""
    try:
        import uvicorn

        from coldbrew.config.keys import new_key
        from coldbrew.live.fleet import single_process
        from coldbrew.serve import create_app
        from coldbrew.serve.server import server_config
        from coldbrew.store import database_url
    except ImportError as exc:
        raise ImportError(f"serving needs: pip install 'coldbrew[serve]' ({exc})") from exc
    key = None
    settings = Settings.from_env(
        db_url=db, encoder=encoder if isinstance(encoder, str) else None, **overrides
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
        # the lines above reach a pipe (a container's log) now, not when a buffer fills: a
        # SIGTERM ends the process after uvicorn's shutdown without flushing it
        sys.stdout.flush()
        server = uvicorn.Server(server_config(app, settings, host, port))
        stopped_by = _noting_signals(server)
        try:
            server.run()
        except KeyboardInterrupt:  # Ctrl-C: uvicorn stopped the service, then raised it again
            raise SystemExit(130) from None  # the shell's code for SIGINT, without a traceback
        if signal.SIGINT in stopped_by:  # ...which it cannot where SIGINT was ignored before
            raise SystemExit(130)  # (a script's background job): uvicorn catches it all the same


def _noting_signals(server: Any) -> list[int]:
    """The signals that stop ``server`` (a ``uvicorn.Server``), noted as they come: its handler,
    installed while it runs, is wrapped before it starts."""
    noted: list[int] = []
    handle = server.handle_exit

    def noting(sig: int, frame: Any) -> None:
        noted.append(sig)
        handle(sig, frame)

    server.handle_exit = noting
    return noted


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
    flagged = {s.name: getattr(args, s.name) for s in all_declared() if s.knob.flag}
    db, encoder = flagged.pop("db_url"), flagged.pop("encoder")
    serve(db, encoder, args.host, args.port, data=data, **flagged)


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
    zeroshot = dataclasses.replace(settings.serving, model="zeroshot")
    plan = dataclasses.replace(settings, encoder=spec, serving=zeroshot, index="exact")
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
