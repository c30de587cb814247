"""``coldbrew recommend``: recommendations for a new or known user against a dataset."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

import numpy as np

from coldbrew.cli.common import add_dataset_args, add_encoder_args, load_from_args, model_from_args
from coldbrew.data.schema import ITEM_ID
from coldbrew.eval.calibration import score_percentiles
from coldbrew.models.base import UserQuery
from coldbrew.models.context import TEXT, TIME
from coldbrew.models.rerank import check_controls
from coldbrew.text.language import script_warnings


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "recommend",
        help="recommend items for free text, attributes, liked items or a known user",
        description="Recommend items for a user described by any mix of free text, attributes "
        "and liked items (or a known user id). Example: coldbrew recommend --dataset ml-100k "
        '--text "a funny animated movie for kids"',
    )
    add_dataset_args(parser)
    add_encoder_args(parser)
    parser.add_argument(
        "--model",
        metavar="NAME|DIR",
        default="hybrid",
        help="hybrid (what coldbrew serve serves: fitted on the dataset once, then kept in the "
        "cache), zeroshot (the language model alone), or a saved model directory "
        "(default: %(default)s)",
    )
    parser.add_argument("--text", help="the user's own words")
    parser.add_argument(
        "--attr",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a user attribute, repeatable (--attr age=25-34 --attr occupation=programmer)",
    )
    parser.add_argument(
        "--liked", default="", metavar="ID,ID", help="item ids the user liked, oldest first"
    )
    parser.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="when, where and how the user asks, repeatable (--context time=2011-06-04T09:30:00 "
        "--context location=France --context device=mobile; time may be seconds since 1970)",
    )
    parser.add_argument(
        "--context-text", metavar="TEXT", help='the situation in words ("rainy evening, with kids")'
    )
    parser.add_argument("--user", metavar="ID", help="a known user id from the dataset")
    parser.add_argument("-k", type=int, default=10, help="how many items (default: %(default)s)")
    parser.add_argument(
        "--diversity",
        type=float,
        default=0.0,
        metavar="0-1",
        help="how much less alike the items may be (maximal marginal relevance over the item "
        "text vectors); 0: off (default: %(default)s)",
    )
    parser.add_argument(
        "--novelty",
        type=float,
        default=0.0,
        metavar="N",
        help="how strongly popular items are pushed down (>= 0); 0: off (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def parse_attributes(pairs: list[str], flag: str = "--attr") -> dict[str, str]:
    attributes = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} expects KEY=VALUE, got {pair!r}")
        attributes[key.strip()] = value.strip()
    return attributes


def parse_context(pairs: list[str], text: str | None) -> dict[str, Any]:
    """``--context KEY=VALUE`` pairs and ``--context-text``; a ``time`` that is a number is
    seconds since 1970 (anything else must be an ISO 8601 time)."""
    context: dict[str, Any] = dict(parse_attributes(pairs, "--context"))
    with contextlib.suppress(KeyError, ValueError):
        context[TIME] = float(context[TIME])
    if text is not None and text.strip():
        context[TEXT] = text.strip()
    return context


def run(args: argparse.Namespace) -> int:
    liked = tuple(i.strip() for i in args.liked.split(",") if i.strip())
    query = UserQuery(
        user_id=args.user,
        text=args.text,
        attributes=parse_attributes(args.attr),
        liked=liked,
        context=parse_context(args.context, args.context_text),
    )
    if query.is_empty():
        raise ValueError("describe the user: give --text, --attr, --liked, --context or --user")
    check_controls(args.diversity, args.novelty)  # before the model loads
    dataset = load_from_args(args)
    known = set(dataset.items[ITEM_ID])
    unknown = [i for i in liked if i not in known]
    if unknown:
        raise ValueError(f"--liked names items not in {dataset.name}: {', '.join(unknown[:5])}")
    model = model_from_args(args, dataset)
    encoders = model.encoders()
    for warning in script_warnings(encoders[0].name if encoders else "", [args.text]):
        print(f"warning: {warning}", file=sys.stderr)
    recs = model.recommend(query, k=args.k, diversity=args.diversity, novelty=args.novelty)
    relevance = score_percentiles(model.score([query])[0], np.asarray(recs.scores))
    titles = dataset.items.set_index(ITEM_ID)
    title_col = dataset.spec.item_text[0] if dataset.spec.item_text else None
    rows = [
        {
            "item_id": i,
            "score": round(float(s), 4),
            "relevance": round(float(r), 1),
            "title": str(titles.at[i, title_col]) if title_col else "",
        }
        for i, s, r in zip(recs.ids, recs.scores, relevance)
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print("  #  score  relevance  item       title")
        for rank, row in enumerate(rows, 1):
            print(
                f"{rank:>3}. {row['score']:.3f}  {row['relevance']:>8.1f}%  "
                f"{row['item_id']:<10} {row['title']}"
            )
        print("(relevance: the share of the catalogue this item outscores for this user)")
    return 0
