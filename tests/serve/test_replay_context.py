"""The replay benchmark sends each event's context, and asks its user in it (issue 26)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from coldbrew.config.settings import Settings
from coldbrew.data.schema import CONTEXT, Dataset, DatasetSpec

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
FRANCE = {"time": 1307179800.0, "location": "France"}  # a Saturday morning
UK = {"time": 1307217600.0, "location": "UK"}


def module(name: str) -> ModuleType:
    """A benchmarks/ module (they import their siblings by plain name)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


def shop() -> Dataset:
    """Six purchases in time order, each with its own context (one without)."""
    rows = [
        ("ann", "tent", FRANCE),
        ("bob", "boots", UK),
        ("cid", "tent", UK),
        ("ann", "boots", UK),
        ("bob", "tent", FRANCE),
        ("cid", "boots", None),
    ]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", CONTEXT])
    inter = inter.assign(value=np.nan, timestamp=np.arange(len(rows), dtype=float))
    items = pd.DataFrame({"item_id": ["tent", "boots"], "title": ["Tent", "Boots"]})
    return Dataset(DatasetSpec("shop"), items, inter)


def test_replayed_events_and_queries_carry_their_context(
    open_client: Callable[..., TestClient],
) -> None:
    stream_mod, service = module("replay_stream"), module("replay_service")
    client = open_client(write_key_hashes=Settings.keys(module("liveserver").KEY))
    asked: list[dict[str, Any]] = []

    def record(request: httpx.Request) -> None:
        if request.url.path == "/recommend":
            asked.append(httpx.Response(200, content=request.content).json())

    client.event_hooks = {"request": [record], "response": []}
    args = argparse.Namespace(user_fraction=1.0, max_events=0, warmup=0.5, eval_events=3)
    stream = stream_mod.build_stream(shop(), args)
    assert stream.contexts == [FRANCE, UK, UK, UK, FRANCE, None]
    service.send_catalogue(client, stream)
    service.send_warmup(client, stream, batch=2)
    service.evaluate(client, stream, service.Served(), None, 2)

    store = client.app.state.engine.store  # type: ignore[attr-defined]
    sent = {(i.user_id, i.item_id): i.context for i in store.interactions()}
    assert sent == {
        ("ann", "tent"): FRANCE,
        ("bob", "boots"): UK,
        ("cid", "tent"): UK,
        ("ann", "boots"): UK,
        ("bob", "tent"): FRANCE,
        ("cid", "boots"): None,
    }
    # the evaluated events' users were asked just before, each in that event's context
    assert [(a["user_id"], a.get("context")) for a in asked] == [
        ("ann", UK),
        ("bob", FRANCE),
        ("cid", None),
    ]


def test_without_context_the_stream_sends_none() -> None:
    stream_mod, service = module("replay_stream"), module("replay_service")
    data = shop()
    data = data.with_interactions(data.interactions.drop(columns=[CONTEXT]))
    args = argparse.Namespace(user_fraction=1.0, max_events=0, warmup=0.5, eval_events=3)
    stream = stream_mod.build_stream(data, args)
    assert stream.contexts == []
    assert "context" not in service.interaction(stream, 0)
