"""``coldbrew demo``: the whole idea in one command, offline, on the bundled sample catalogue.

With the ``[serve]`` extra it loads the bilingual sample into SQLite through the same engine the
service runs, prints recommendations for a new user of each cold-start mode and for a newly added
item, then serves the try-it page. Without it, ``--no-serve`` prints the same examples from the
library's zero-shot model held in memory.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from coldbrew.cli.serve import add_server_args, serve
from coldbrew.data import ITEM_ID, sample_dataset
from coldbrew.models.base import UserQuery
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.serve.explain import STOPWORDS, summarize_attributes
from coldbrew.store.records import Interaction, Item, User
from coldbrew.text.encoder import Encoder, tokenize
from coldbrew.text.factory import make_encoder
from coldbrew.text.language import AUTO, catalogue_language, encoder_for

if TYPE_CHECKING:
    from coldbrew.serve.engine import Engine

SERVE_EXTRA = "pip install 'coldbrew[serve]'"
EXAMPLES: list[tuple[str, UserQuery]] = [
    ("free text (English)", UserQuery(text="I need a light jacket for a spring outing")),
    ("free text (Chinese)", UserQuery(text="想找一本好看的科幻小说")),
    (
        "attributes only",
        UserQuery(attributes={"age": "18-24", "gender": "male", "occupation": "student"}),
    ),
    ("two clicks", UserQuery(liked=("en-013", "zh-013"))),
    ("known user u1 (hiker)", UserQuery(user_id="u1")),
]

NEW_ITEM = Item(
    "new-001",
    "Packable rain jacket",
    "A featherweight waterproof jacket for spring hikes and camping trips.",
    {"category": "clothing", "price": 79.0},
)


def sample_records() -> tuple[list[Item], list[User], list[Interaction]]:
    """The bundled sample as store records: a rating of 4+ is a like, 2 or less a dislike."""
    from coldbrew.serve.importer import dataset_records  # needs the [serve] extra

    records = dataset_records(sample_dataset())
    return records.items, records.users, records.interactions


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="recommend on the bundled bilingual sample catalogue, then serve the try-it page",
        description="Load the bundled English/Chinese sample catalogue into SQLite, encode it with "
        "a bundled language model, print recommendations for a new user of each cold-start mode "
        "and for a newly added item, then serve the try-it page.",
    )
    parser.add_argument(
        "--encoder",
        default=AUTO,
        help="auto (chosen by the catalogue's language: multilingual for this bilingual sample), "
        "multilingual (bundled e5-small, reads Chinese), default (bundled MiniLM, English), "
        "or any sentence-transformers name/path (default: %(default)s)",
    )
    parser.add_argument(
        "--db", default="coldbrew-demo.sqlite", help="SQLite file (default: %(default)s)"
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
    """``spec``'s encoder; the multilingual one falls back to MiniLM where it is not installed."""
    try:
        return make_encoder(spec)
    except ImportError as exc:
        if spec != "multilingual":
            raise
        print(f"note: the multilingual encoder is not available here ({exc});")
        print("      falling back to the default MiniLM, which reads English only")
        return make_encoder("default")


def stored_engine(db: str, encoder: Encoder) -> Engine:
    """The serving engine over the SQLite file ``db``, filled with the sample."""
    from coldbrew.serve.engine import Engine, Serving
    from coldbrew.serve.records import item_text
    from coldbrew.store import Store
    from coldbrew.text.centred import centred_for

    items, users, interactions = sample_records()
    encoder = centred_for(encoder, [item_text(i) for i in items])  # as the service will
    serving = Serving(models_dir=db + ".models", refit_every=0, refit_minutes=0)
    engine = Engine(Store(db), encoder, serving=serving).load()
    engine.upsert_items(items)
    engine.upsert_users(users)
    engine.add_interactions(interactions)
    print(
        f"sample catalogue: {len(items)} items, {len(users)} users, "
        f"{len(interactions)} interactions, stored in {db}"
    )
    outcome = engine.refit_now()  # what `coldbrew serve` does in the background
    print(
        f"model: {engine.info.kind} {engine.info.version}, learned from "
        f"{outcome['interactions']} interactions in {outcome['seconds']:.1f} s"
    )
    return engine


def stored_demo(engine: Engine, k: int) -> None:
    """Every example through the serving engine, then the new item's reach."""
    from coldbrew.serve.engine import Query

    for label, query in EXAMPLES:
        print(f"\n{label}: {_described(query)}")
        request = Query(query.user_id, query.text, query.attributes, query.liked, k=k)
        for rec in engine.recommend(request):
            print(f"  {rec.score:.3f}  {rec.item.title}")
            if rec.explanation is not None:
                print(f"         why: {rec.explanation.text}")
    engine.upsert_items([NEW_ITEM])
    _print_reach(engine.users_for_item(NEW_ITEM.item_id, k))


def memory_demo(encoder: Encoder, k: int) -> None:
    """Every example from the library's zero-shot model in memory (no database, no service)."""
    dataset = sample_dataset()
    model = ZeroShotRecommender(encoder).fit(dataset)
    print(f"{dataset.summary()}, held in memory")
    items = dataset.items.set_index(ITEM_ID)
    for label, query in EXAMPLES:
        print(f"\n{label}: {_described(query)}")
        recs = model.recommend(query, k=k)
        for item_id, score in zip(recs.ids, recs.scores):
            print(f"  {score:.3f}  {items.at[item_id, 'title']}")
            print(f"         why: {memory_reason(model, query, item_id, items)}")
    item = NEW_ITEM
    row = {ITEM_ID: item.item_id, "title": item.title, "description": item.description}
    model.add_items(pd.DataFrame([{**row, **item.attributes}]))
    users = model.known_users()
    scores = model.score([UserQuery(user_id=u) for u in users])[:, -1]
    order = np.argsort(-scores, kind="stable")[:k]
    _print_reach([(users[i], float(scores[i])) for i in order])


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


def _described(query: UserQuery) -> Any:
    return query.text or query.attributes or query.liked or query.user_id


def _print_reach(pairs: list[tuple[str, float]]) -> None:
    print(f"\nnew item {NEW_ITEM.title!r} reaches existing users, best match first:")
    for user_id, score in pairs:
        print(f"  {score:.3f}  {user_id}")


def run(args: argparse.Namespace) -> int:
    spec = encoder_for(args.encoder, catalogue_language(sample_dataset()))
    encoder = demo_encoder(spec)
    try:
        engine = stored_engine(args.db, encoder)
    except ImportError as exc:
        if not args.no_serve:
            raise ImportError(f"the demo's page needs: {SERVE_EXTRA} ({exc})") from exc
        print(f"note: without the [serve] extra the demo runs in memory ({SERVE_EXTRA} to store")
        print("      the catalogue in SQLite and serve the try-it page)")
        print(f"encoder: {encoder.name} ({encoder.dim}-d, bundled, offline)")
        memory_demo(encoder, args.k)
        return 0
    print(f"encoder: {engine.encoder_name} ({encoder.dim}-d, bundled, offline)")
    stored_demo(engine, args.k)
    engine.store.close()
    if args.no_serve:
        return 0
    print()
    serve(args.db, encoder, args.host, args.port)
    return 0
