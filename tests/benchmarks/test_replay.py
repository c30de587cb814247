"""The replay benchmark's smoke mode, end to end against a live ``coldbrew serve``.

Runs ``benchmarks/replay.py --smoke`` (ml-100k's first 2,000 positives, 1,000 as history, 200
evaluated) with the tiny hashing encoder, then checks its output against an independent reading
of the same stream.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from coldbrew.data.schema import Dataset
from coldbrew.text.templates import ItemTemplate

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "replay.py"
SECTIONS = ("overall", "windows", "history", "item_age", "per_event")
SERVED = ("latency", "phases", "refit", "peak_rss_mb", "versions_served")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory, ml100k: Dataset) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("replay")
    command = [sys.executable, str(SCRIPT), "--smoke", "--encoder", "hashing", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads((out / "replay-ml-100k-smoke.json").read_text())
    report["_out"] = out
    report["_stdout"] = done.stdout
    return report


def independent_popularity_hits(
    data: Dataset, n_events: int, n_warm: int, n_eval: int
) -> list[int]:
    """hit@20 of "most positives so far, seen excluded, ties by catalogue order", from scratch."""
    rows = data.interactions.to_dict(orient="records")
    stream = sorted(
        (r for r in enumerate(rows) if r[1]["value"] >= 4), key=lambda r: (r[1]["timestamp"], r[0])
    )[:n_events]
    position = {item: n for n, item in enumerate(data.items["item_id"])}
    counts: Counter[str] = Counter()
    seen: dict[str, set[str]] = {}
    hits = []
    for n, (_, r) in enumerate(stream[: n_warm + n_eval]):
        user, item = r["user_id"], r["item_id"]
        mine = seen.setdefault(user, set())
        if n >= n_warm:
            ranked = sorted(position, key=lambda i: (-counts[i], position[i]))
            top = [i for i in ranked if i not in mine][:20]
            hits.append(int(item in top))
        counts[item] += 1
        mine.add(item)
    return hits


def load_stream_module() -> ModuleType:
    """``benchmarks/replay_stream.py`` (its sibling modules are imported by plain name)."""
    sys.path.insert(0, str(SCRIPT.parent))
    return importlib.import_module("replay_stream")


@pytest.mark.slow
def test_smoke_popularity_matches_an_independent_count(
    smoke: dict[str, Any], ml100k: Dataset
) -> None:
    stream = smoke["stream"]
    assert (stream["events"], stream["warmup_events"], stream["evaluation_events"]) == (
        2000,
        1000,
        200,
    )
    expected = independent_popularity_hits(ml100k, 2000, 1000, 200)
    ranks = smoke["results"]["popularity"]["per_event"]["rank"]
    assert [int(1 <= r <= 20) for r in ranks] == expected
    assert smoke["results"]["popularity"]["overall"]["hit"] == pytest.approx(
        sum(expected) / len(expected), abs=1e-4
    )
    assert sum(expected) > 0  # the check would be empty on a stream popularity never hits


@pytest.mark.slow
def test_smoke_report_has_every_section(smoke: dict[str, Any]) -> None:
    results = smoke["results"]
    for name in ("zeroshot", "popularity"):
        assert all(s in results[name] for s in SECTIONS), name
    zeroshot = results["zeroshot"]
    assert all(s in zeroshot for s in SERVED)
    ranks = zeroshot["per_event"]["rank"]
    assert len(ranks) == 200 and all(0 <= r <= 20 for r in ranks)
    hits = [1 <= r <= 20 for r in ranks]
    assert zeroshot["overall"]["hit"] == pytest.approx(sum(hits) / 200, abs=1e-4)
    low, high = zeroshot["overall"]["hit_ci95"]
    assert low <= zeroshot["overall"]["hit"] <= high
    ndcg = sum(1 / math.log2(r + 1) for r in ranks if r) / 200
    assert zeroshot["overall"]["ndcg"] == pytest.approx(ndcg, abs=1e-4)
    assert sum(b["n"] for b in zeroshot["history"].values()) == 200
    assert sum(b["n"] for b in zeroshot["item_age"].values()) == 200
    assert zeroshot["latency"]["recommend"]["n"] == 200
    assert zeroshot["peak_rss_mb"] > 50
    assert len(smoke["load_average"]["start"]) == 3
    block = smoke["provenance"]  # the script's run recorded where it came from
    assert block["command"].startswith("python ") and "replay.py --smoke" in block["command"]
    assert block["commit"] and len(block["load_average"]["start"]) == 3
    out: Path = smoke["_out"]
    assert (out / "replay-ml-100k-smoke.png").read_bytes()[:4] == b"\x89PNG"
    assert "| popularity |" in (out / "replay-ml-100k-smoke.md").read_text()


@pytest.mark.slow
def test_smoke_hybrid_refits_when_the_server_offers_it(smoke: dict[str, Any]) -> None:
    hybrids = {k: v for k, v in smoke["results"].items() if k.startswith("hybrid")}
    assert hybrids, "the smoke run always lists the hybrid variants"
    for name, res in hybrids.items():
        if "skipped" in res:  # a checkout whose service cannot refit
            assert "/admin/refit" in res["skipped"]
            continue
        refit = res["refit"]
        assert refit["first_wall_s"] > 0, name
        assert refit["count"] >= 1 and sum(refit["outcomes"].values()) == refit["count"], name
        assert set(res["kinds_served"]) <= {"zeroshot", "hybrid"}, name
        assert None not in res["per_event"]["model_version"], name
        assert len(res["per_event"]["rank"]) == 200, name
        assert name in smoke["targets"]


@pytest.mark.slow
def test_items_are_sent_with_the_spec_text(ml100k: Dataset) -> None:
    replay = load_stream_module()
    template = ItemTemplate(ml100k.spec.item_text, ml100k.spec.item_attributes)
    for row in ml100k.items.head(200).to_dict(orient="records"):
        body = replay.item_payload(row, template)
        assert f"{body['title']}. {body['description']}" == template.render(row)
