"""``coldbrew demo``: the whole idea in one command, offline, on the bundled sample catalogue or,
with ``--data FOLDER``, on the user's own.

With the ``[serve]`` extra it loads the catalogue into SQLite through the same engine the service
runs, prints recommendations for a new user of each cold-start mode and for a newly added item,
then serves the try-it page. Without it, ``--no-serve`` prints the same examples from the
library's zero-shot model held in memory. On a folder the examples come from its own items and
users (:mod:`coldbrew.cli.demo_examples`); those it cannot give are skipped with the reason.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from coldbrew.cli.demo_examples import SAMPLE_PLAN, DemoPlan, catalogue_plan, new_item_row
from coldbrew.cli.serve import add_server_args, serve
from coldbrew.data import ITEM_ID, Dataset, load_folder, sample_dataset
from coldbrew.data.cleaning import OnBadRows
from coldbrew.data.frames import pd
from coldbrew.live.explain import STOPWORDS, summarize_attributes
from coldbrew.models.base import UserQuery
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.store.records import Interaction, Item, User
from coldbrew.text.encoder import Encoder, tokenize
from coldbrew.text.factory import runtime_encoder
from coldbrew.text.language import AUTO, catalogue_language, encoder_for

if TYPE_CHECKING:
    from coldbrew.live.engine import Engine

SERVE_EXTRA = "pip install 'coldbrew[serve]'"


def catalogue_records(dataset: Dataset) -> tuple[list[Item], list[User], list[Interaction]]:
    """``dataset`` as store records: a rating at its threshold or above is a like."""
    from coldbrew.live.importer import dataset_records  # needs the [serve] extra

    records = dataset_records(dataset)
    return records.items, records.users, records.interactions


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="recommend on the bundled bilingual sample catalogue (or your own folder), "
        "then serve the try-it page",
        description="Load the bundled English/Chinese sample catalogue (or, with --data, your own "
        "dataset folder) into SQLite, encode it with a bundled language model, print "
        "recommendations for a new user of each cold-start mode and for a newly added item, then "
        "serve the try-it page. On your folder the examples come from its own items and users.",
    )
    parser.add_argument(
        "--data",
        metavar="FOLDER",
        help="your dataset folder (a dataset.toml; interactions optional) instead of the sample",
    )
    parser.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="with --data: leave out rows that fail validation (and list them) instead of stopping",
    )
    parser.add_argument(
        "--encoder",
        default=AUTO,
        help="auto (chosen by the catalogue's language: multilingual for the bilingual sample), "
        "multilingual (bundled e5-small, reads Chinese), default (bundled MiniLM, English), "
        "or any sentence-transformers name/path (default: %(default)s)",
    )
    parser.add_argument(
        "--db",
        help="SQLite file (default: coldbrew-demo.sqlite, or coldbrew-demo-NAME.sqlite for --data)",
    )
    parser.add_argument(
        "-k", type=int, default=3, help="recommendations per example (default: %(default)s)"
    )
    parser.add_argument(
        "--no-serve", action="store_true", help="stop after printing; do not start the service"
    )
    add_server_args(parser)
    parser.set_defaults(func=run)


def demo_encoder(spec: str) -> Encoder:
    """``spec``'s encoder on the runtime the service will run it on
    (``$COLDBREW_ENCODER_RUNTIME``, else auto); the multilingual one falls back to MiniLM where
    it is not installed."""
    try:
        return runtime_encoder(spec)
    except ImportError as exc:
        if spec != "multilingual":
            raise
        print(f"note: the multilingual encoder is not available here ({exc});")
        print("      falling back to the default MiniLM, which reads English only")
        return runtime_encoder("default")


def stored_engine(db: str, encoder: Encoder, dataset: Dataset) -> Engine:
    """The serving engine over the SQLite file ``db``, filled with ``dataset``."""
    from coldbrew.live.engine import Engine, Serving
    from coldbrew.live.records import item_text
    from coldbrew.store import Store
    from coldbrew.text.centred import centred_for

    items, users, interactions = catalogue_records(dataset)
    encoder = centred_for(encoder, [item_text(i) for i in items])  # as the service will
    serving = Serving(models_dir=db + ".models", refit_every=0, refit_minutes=0)
    engine = Engine(Store(db), encoder, serving=serving).load()
    engine.upsert_items(items)
    if users:
        engine.upsert_users(users)
    if interactions:
        engine.add_interactions(interactions)
    print(
        f"{dataset.name} catalogue: {len(items)} items, {len(users)} users, "
        f"{len(interactions)} interactions, stored in {db}"
    )
    outcome = engine.refit_now()  # what `coldbrew serve` does in the background
    print(
        f"model: {engine.info.kind} {engine.info.version}, learned from "
        f"{outcome['interactions']} interactions in {outcome['seconds']:.1f} s"
    )
    if engine.model is not None:
        print(f"       {engine.model.describe()}")
    return engine


def stored_demo(engine: Engine, plan: DemoPlan, k: int) -> None:
    """Every example through the serving engine, then the new item's reach."""
    from coldbrew.live.answers import Query

    for query in _asked(plan):
        request = Query(query, k=k)
        for rec in engine.recommend(request):
            print(f"  {rec.score:.3f}  {rec.item.title}")
            if rec.explanation is not None:
                print(f"         why: {rec.explanation.text}")
    if plan.new_item is None:
        _print_no_reach()
        return
    engine.upsert_items([plan.new_item])
    _print_reach(plan.new_item, engine.users_for_item(plan.new_item.item_id, k))


def memory_demo(
    encoder: Encoder, k: int, dataset: Dataset | None = None, plan: DemoPlan = SAMPLE_PLAN
) -> None:
    """Every example of ``plan`` from the library's zero-shot model in memory (no database, no
    service), on ``dataset`` (default: the bundled sample)."""
    dataset = dataset if dataset is not None else sample_dataset()
    model = ZeroShotRecommender(encoder).fit(dataset)
    print(f"{dataset.summary()}, held in memory")
    print(f"model: {model.describe()}")
    items = _item_texts(dataset)
    for query in _asked(plan):
        recs = model.recommend(query, k=k)
        for item_id, score in zip(recs.ids, recs.scores):
            print(f"  {score:.3f}  {items.at[item_id, 'title']}")
            print(f"         why: {memory_reason(model, query, item_id, items)}")
    if plan.new_item is None or not model.known_users():
        _print_no_reach()
        return
    model.add_items(pd.DataFrame([new_item_row(dataset, plan.new_item)]))
    users = model.known_users()
    scores = model.score([UserQuery(user_id=u) for u in users])[:, -1]
    order = np.argsort(-scores, kind="stable")[:k]
    _print_reach(plan.new_item, [(users[i], float(scores[i])) for i in order])


def _item_texts(dataset: Dataset) -> pd.DataFrame:
    """Each item's title and the rest of its text, indexed by id (for printing and reasons)."""
    items = dataset.items.set_index(ITEM_ID)
    title = dataset.title_column
    rest = [c for c in dataset.spec.item_text if c != title and c in items.columns]
    text = items[rest].fillna("").astype(str).agg(" ".join, axis=1) if rest else ""
    return pd.DataFrame({"title": items[title].astype(str), "description": text})


def memory_reason(
    model: ZeroShotRecommender, query: UserQuery, item_id: str, items: pd.DataFrame
) -> str:
    """Why the zero-shot model ranked ``item_id``, from the part of the user's vector that moved
    it most (their words, attributes or liked items), worded as the service words it."""
    resolved = model.resolve(query)
    row = model.item_ids.rows([item_id])
    shares = model.contributions([resolved], row)
    top = max(shares, key=lambda name: float(shares[name][0, 0]))
    if top == "liked" and resolved.liked:
        liked = model.item_ids.rows(resolved.liked, skip_unknown=True)
        vectors = np.asarray(model.item_vectors, dtype=np.float32)
        closest = model.item_ids.id(int(liked[np.argmax(vectors[liked] @ vectors[row[0]])]))
        return f"Close in meaning to “{items.at[closest, 'title']}”, which you liked."
    if top == "attributes" and resolved.attributes:
        return f"Close in meaning to your profile ({summarize_attributes(resolved.attributes)})."
    text = f"{items.at[item_id, 'title']} {items.at[item_id, 'description']}"
    said = [w for w in dict.fromkeys(tokenize(query.text or "")) if len(w) > 2]
    found = [w for w in said if w not in STOPWORDS and w in set(tokenize(text))][:4]
    quoted = ", ".join(f"“{w}”" for w in found)
    return f"Matches your words {quoted}." if found else "Close in meaning to what you wrote."


def _asked(plan: DemoPlan) -> Iterator[UserQuery]:
    """Each example's query, its header printed first; a skipped one prints why instead."""
    for example in plan.examples:
        if example.query is None:
            print(f"\n{example.label}: skipped ({example.skipped})")
            continue
        query = example.query
        asked = query.text or query.attributes or query.liked or query.user_id
        print(f"\n{example.label}: {asked}")
        yield query


def _print_reach(item: Item, pairs: list[tuple[str, float]]) -> None:
    print(f"\nnew item {item.title!r} reaches existing users, best match first:")
    for user_id, score in pairs:
        print(f"  {score:.3f}  {user_id}")


def _print_no_reach() -> None:
    print("\nnew item's reach: skipped (no users yet)")


def demo_dataset(folder: str | None, on_bad_rows: OnBadRows) -> Dataset:
    """The user's dataset folder, else the bundled sample."""
    return sample_dataset() if folder is None else load_folder(folder, on_bad_rows=on_bad_rows)


def run(args: argparse.Namespace) -> int:
    dataset = demo_dataset(args.data, "skip" if args.skip_bad_rows else "raise")
    plan = SAMPLE_PLAN if args.data is None else catalogue_plan(dataset)
    db = args.db or f"coldbrew-demo{'' if args.data is None else '-' + dataset.name}.sqlite"
    spec = encoder_for(args.encoder, catalogue_language(dataset))
    encoder = demo_encoder(spec)
    try:
        engine = stored_engine(db, encoder, dataset)
    except ImportError as exc:
        if not args.no_serve:
            raise ImportError(f"the demo's page needs: {SERVE_EXTRA} ({exc})") from exc
        print(f"note: without the [serve] extra the demo runs in memory ({SERVE_EXTRA} to store")
        print("      the catalogue in SQLite and serve the try-it page)")
        print(f"encoder: {encoder.name} ({encoder.dim}-d, bundled, offline)")
        memory_demo(encoder, args.k, dataset, plan)
        return 0
    print(f"encoder: {engine.encoder_name} ({encoder.dim}-d, bundled, offline)")
    stored_demo(engine, plan, args.k)
    engine.store.close()
    if args.no_serve:
        return 0
    print()
    serve(db, encoder, args.host, args.port)
    return 0
