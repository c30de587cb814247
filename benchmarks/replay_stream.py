"""The replayed stream: a dataset's positives in time order, what each evaluated event knew,
and the client-side popularity baseline on it (for ``replay.py``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import replay_report as report

from coldbrew.data.schema import CONTEXT, Dataset
from coldbrew.text.templates import ItemTemplate


@dataclass
class Stream:
    """The positives in time order, split into warm-up and evaluation, with their context."""

    dataset: str
    users: list[str]
    items: list[str]
    times: list[float]
    n_warm: int
    n_eval: int
    attributes: dict[str, dict[str, Any]]
    catalogue: list[dict[str, Any]]
    positives: str = "rating ≥ 4"  # what counts as an event, as the dataset spec says
    contexts: list[dict[str, Any] | None] = field(default_factory=list)  # per event, if any
    history: list[int] = field(default_factory=list)  # per evaluation event
    item_age_days: list[float | None] = field(default_factory=list)

    def evaluation(self) -> range:
        return range(self.n_warm, self.n_warm + self.n_eval)


def positives_in_order(data: Dataset) -> pd.DataFrame:
    """Positive interactions by timestamp; ties keep the file order."""
    frame = data.positives().reset_index(drop=True)
    frame = frame.assign(_order=np.arange(len(frame)))
    return frame.sort_values(["timestamp", "_order"], kind="stable").reset_index(drop=True)


def item_payload(row: dict[str, Any], template: ItemTemplate) -> dict[str, Any]:
    """An item as ``POST /items`` takes it, so the service's text (title, then description)
    is exactly what the dataset spec renders: the description is the rest of that rendering."""
    if template.text_fields[:1] != ("title",):
        raise ValueError(f"the spec's item text must start with title, not {template.text_fields}")
    rest = ItemTemplate(template.text_fields[1:], template.attribute_fields)
    return {
        "id": row["item_id"],
        "title": str(row["title"]).strip(),
        "description": rest.render(row),
    }


def user_attributes(data: Dataset) -> dict[str, dict[str, Any]]:
    fields = data.spec.user_attributes
    return {
        str(row["user_id"]): {f: row[f] for f in fields if isinstance(row.get(f), str) and row[f]}
        for row in data.users.to_dict(orient="records")
    }


def build_stream(data: Dataset, args: argparse.Namespace) -> Stream:
    """The replayed stream: positives in time order, optionally a fraction of users, cut short."""
    frame = positives_in_order(data)
    if args.user_fraction < 1.0:
        users = frame["user_id"].unique()
        keep = np.random.default_rng(0).random(len(users)) < args.user_fraction
        frame = frame[frame["user_id"].isin(set(users[keep]))].reset_index(drop=True)
    if args.max_events:
        frame = frame.iloc[: args.max_events]
    n_warm = int(len(frame) * args.warmup)
    n_eval = min(args.eval_events, len(frame) - n_warm)
    template = ItemTemplate(data.spec.item_text, data.spec.item_attributes)
    stream = Stream(
        dataset=data.name,
        users=[str(u) for u in frame["user_id"]],
        items=[str(i) for i in frame["item_id"]],
        times=[float(t) for t in frame["timestamp"]],
        n_warm=n_warm,
        n_eval=n_eval,
        attributes=user_attributes(data),
        catalogue=[item_payload(r, template) for r in data.items.to_dict(orient="records")],
        positives=positive_rule(data),
        contexts=event_contexts(frame),
    )
    add_context(stream)
    return stream


def event_contexts(frame: pd.DataFrame) -> list[dict[str, Any] | None]:
    """Each event's context (``None`` where it has none); empty when no event has one."""
    if CONTEXT not in frame:
        return []
    return [dict(c) if isinstance(c, dict) and c else None for c in frame[CONTEXT]]


def positive_rule(data: Dataset) -> str:
    """What the stream holds: ratings at the spec's threshold, or every interaction of implicit
    data (online-retail's purchases: a product first sold late reaches the service as an item
    nobody has touched, counted in the "new item" age bucket)."""
    threshold = data.spec.positive_threshold
    return "every interaction" if threshold is None else f"rating ≥ {threshold:g}"


def add_context(stream: Stream) -> None:
    """Per evaluation event: the user's positives so far and the item's days since its first."""
    counts: dict[str, int] = {}
    first: dict[str, float] = {}
    for n in range(stream.n_warm + stream.n_eval):
        user, item, ts = stream.users[n], stream.items[n], stream.times[n]
        if n >= stream.n_warm:
            stream.history.append(counts.get(user, 0))
            stream.item_age_days.append(
                None if item not in first else (ts - first[item]) / report.DAY
            )
        counts[user] = counts.get(user, 0) + 1
        first.setdefault(item, ts)


def popularity_ranks(stream: Stream) -> np.ndarray:
    """Rank (1-based; 0 = not in the top K) of each held-out item in "most positives so far",
    the user's seen items excluded, ties broken by catalogue order."""
    row = {p["id"]: n for n, p in enumerate(stream.catalogue)}
    counts = np.zeros(len(row))
    seen: dict[str, set[int]] = {}
    for n in range(stream.n_warm):
        counts[row[stream.items[n]]] += 1
        seen.setdefault(stream.users[n], set()).add(row[stream.items[n]])
    ranks = []
    for n in stream.evaluation():
        user, item = stream.users[n], row[stream.items[n]]
        mine = seen.setdefault(user, set())
        order = np.lexsort((np.arange(len(counts)), -counts))
        top = [j for j in order[: report.K + len(mine)] if j not in mine][: report.K]
        ranks.append(top.index(item) + 1 if item in top else 0)
        counts[item] += 1
        mine.add(item)
    return np.asarray(ranks)
