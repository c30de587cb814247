"""``coldbrew demo``: the whole idea in one command, offline, on the bundled sample catalogue."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pandas as pd

from coldbrew.data import sample_dataset
from coldbrew.data.schema import ITEM_ID, Dataset
from coldbrew.models.base import UserQuery
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text.factory import make_encoder

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

NEW_ITEM = {
    "item_id": "new-001",
    "title": "Packable rain jacket",
    "description": "A featherweight waterproof jacket for spring hikes and camping trips.",
    "category": "clothing",
    "price": 79.0,
}


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="recommend on the bundled bilingual sample catalogue (offline)",
        description="Load the bundled English/Chinese sample catalogue, encode it with a bundled "
        "language model, store it in SQLite, print recommendations for a new user of each "
        "cold-start mode and for a newly added item, then serve the try-it page.",
    )
    parser.add_argument(
        "--encoder",
        default="multilingual",
        help="multilingual (bundled e5-small, reads Chinese), default (bundled MiniLM, English), "
        "or any sentence-transformers name/path (default: %(default)s)",
    )
    parser.add_argument(
        "--db", default="coldbrew-demo.sqlite", help="SQLite file (default: %(default)s)"
    )
    parser.add_argument(
        "-k", type=int, default=3, help="recommendations per example (default: %(default)s)"
    )
    parser.add_argument("--cache-dir", default=".coldbrew/cache", help="embedding cache directory")
    parser.add_argument(
        "--serve", action="store_true", help="then start the service and its web page"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.set_defaults(func=run)


def _title(dataset: Dataset, item_id: str) -> str:
    row = dataset.items.loc[dataset.items[ITEM_ID] == item_id]
    return str(row["title"].iloc[0]) if len(row) else item_id


def run(args: argparse.Namespace) -> int:
    dataset = sample_dataset()
    print(f"sample catalogue: {dataset.summary()}")
    encoder = make_encoder(args.encoder)
    print(f"encoder: {encoder.name} ({encoder.dim}-d, bundled, offline)")
    model = ZeroShotRecommender(encoder, cache_dir=args.cache_dir).fit(dataset)
    for label, query in EXAMPLES:
        recs = model.recommend(query, k=args.k)
        described = query.text or query.attributes or query.liked or query.user_id
        print(f"\n{label}: {described}")
        for item_id, score in zip(recs.ids, recs.scores):
            print(f"  {score:.3f}  {_title(dataset, item_id)}")
    model.add_items(pd.DataFrame([NEW_ITEM]))
    users = model.known_users()
    column = model.item_ids.row(str(NEW_ITEM["item_id"]))
    scores = model.score([UserQuery(user_id=u) for u in users])[:, column]
    print(f"\nnew item {NEW_ITEM['title']!r} reaches existing users, best match first:")
    for idx in np.argsort(-scores)[: args.k]:
        print(f"  {scores[idx]:.3f}  {users[idx]}")
    return 0
