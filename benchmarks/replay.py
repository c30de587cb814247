"""Replay benchmark: what a live ``coldbrew serve`` recommends, measured over HTTP only.

A dataset's positive ratings (≥ 4) are streamed in timestamp order into a live service, the
catalogue (the dataset spec's item text) having been loaded first through the batch endpoints.
A user is created with their attributes at their first positive. The first part of the stream
(``--warmup``, default half) is sent as history in batches; then, before each of the next
``--eval-events`` positives, the service is asked for that user's top 20 (seen items excluded)
and the rank of the held-out item is recorded; then the event is sent. Ratings below 4 are not
sent at all (the issue's protocol: only positives are replayed, so "seen" means "liked").

The catalogue is loaded once, over HTTP, and each variant runs on a fresh server over its own
copy of that database (encoding ml-1m's plots takes minutes on 2 cores). Variants, on the same
stream: today's zero-shot service, the refitting hybrid at each ``--refit-every`` frequency, and
plain popularity computed on the client (positives so far, the user's seen items excluded, ties
by catalogue order).

The server runs this checkout's code (its ``src/`` first on ``PYTHONPATH``); run the script
from the repository root the same way:

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/replay.py --dataset ml-100k
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/replay.py --smoke --out /tmp/r
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import replay_report as report
from liveserver import KEY, free_port, percentiles, start_server, stop_server, timed, tree_rss_mb

from coldbrew.data.benchmarks import LOADERS, data_root
from coldbrew.data.schema import Dataset
from coldbrew.text.templates import ItemTemplate

REPO = Path(__file__).resolve().parents[1]

USER_BATCH = 1000
ITEM_BATCH = 200
DB_NAME = "replay.sqlite"


# ---- the stream ---------------------------------------------------------------------------
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
    )
    add_context(stream)
    return stream


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


# ---- popularity on the client ---------------------------------------------------------------
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


# ---- a served variant -------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    name: str
    model: str  # "zeroshot" or "hybrid"
    refit_every: int = 0


def server_options() -> set[str]:
    """The flags this checkout's ``coldbrew serve`` accepts (read from its ``--help``)."""
    out = subprocess.run(
        [sys.executable, "-m", "coldbrew", "serve", "--help"],
        capture_output=True,
        text=True,
        env=checkout_env(),
        check=True,
    )
    return set(re.findall(r"--[a-z][a-z-]+", out.stdout))


def checkout_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "OPENBLAS_NUM_THREADS": "1"}


def server_command(
    variant: Variant, options: set[str], db: Path, port: int, encoder: str
) -> list[str]:
    command = [sys.executable, "-m", "coldbrew", "serve", "--db", str(db), "--port", str(port)]
    command += ["--encoder", encoder]
    if "--model" in options:
        command += ["--model", variant.model]
    if "--refit-every" in options:
        command += ["--refit-every", str(variant.refit_every)]
    if "--refit-minutes" in options:
        command += ["--refit-minutes", "0"]  # refits by count only, so the frequency is known
    return command


class Monitor(threading.Thread):
    """Samples the server tree's memory and (when offered) ``GET /admin/refit`` every few 100 ms."""

    def __init__(self, pid: int, base: str, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.base, self.every = pid, base, every
        self.peak_rss_mb = 0.0
        self.samples: list[tuple[float, bool, Any, Any]] = []  # (time, running, refits, version)
        self.lasts: list[dict[str, Any]] = []
        self.poll_refit = True
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.halt.is_set():
                self.peak_rss_mb = max(self.peak_rss_mb, tree_rss_mb(self.pid))
                if self.poll_refit:
                    self._poll(client)
                self.halt.wait(self.every)

    def _poll(self, client: httpx.Client) -> None:
        try:
            response = client.get("/admin/refit", headers={"X-API-Key": KEY})
        except httpx.TransportError:
            return
        if response.status_code in (404, 405):
            self.poll_refit = False
            return
        if response.status_code != 200:
            return
        body = response.json()
        self.samples.append(
            (
                time.perf_counter(),
                bool(body.get("running")),
                body.get("refits"),
                body.get("version"),
            )
        )
        last = body.get("last")
        if last and (not self.lasts or self.lasts[-1] != last):
            self.lasts.append(last)

    def spans(self) -> list[tuple[float, float]]:
        """Times a refit ran, widened to the polls either side (so never shorter than it was)."""
        out, start, before = [], None, None
        for t, running, _, _ in self.samples:
            if running and start is None:
                start = before if before is not None else t
            elif not running and start is not None:
                out.append((start, t))
                start = None
            before = t
        if start is not None:
            out.append((start, time.perf_counter()))
        return out


@dataclass
class Served:
    """What one served variant recorded."""

    ranks: list[int] = field(default_factory=list)
    recommend: list[tuple[float, float]] = field(default_factory=list)  # (start, end)
    interaction_s: list[float] = field(default_factory=list)
    user_s: list[float] = field(default_factory=list)
    versions: list[Any] = field(default_factory=list)
    kinds: list[Any] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    first_refit: dict[str, Any] = field(default_factory=dict)


def batches(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


def load_catalogue(client: httpx.Client, stream: Stream) -> None:
    for part in batches(len(stream.catalogue), ITEM_BATCH):
        timed(client, "POST", "/items/batch", {"items": [stream.catalogue[j] for j in part]})


def interaction(stream: Stream, n: int) -> dict[str, Any]:
    user, item = stream.users[n], stream.items[n]
    return {
        "id": f"{user}:{item}",
        "user_id": user,
        "item_id": item,
        "event": "like",
        "timestamp": stream.times[n],
    }


def user_body(stream: Stream, user: str) -> dict[str, Any]:
    return {"id": user, "attributes": stream.attributes.get(user, {})}


def warm_up(client: httpx.Client, stream: Stream, known: set[str], batch: int) -> None:
    """The history part, in batches: the batch's new users first, then its interactions."""
    for part in batches(stream.n_warm, batch):
        new = list(dict.fromkeys(stream.users[n] for n in part if stream.users[n] not in known))
        for chunk in batches(len(new), USER_BATCH):
            users = [user_body(stream, new[j]) for j in chunk]
            timed(client, "POST", "/users/batch", {"users": users})
        known.update(new)
        timed(
            client,
            "POST",
            "/interactions/batch",
            {"interactions": [interaction(stream, n) for n in part]},
        )


def refit_state(client: httpx.Client) -> dict[str, Any]:
    return dict(timed(client, "GET", "/admin/refit")[1])


def first_refit(client: httpx.Client, timeout_s: float) -> dict[str, Any]:
    """Wait for any running refit, start one, wait until it is done; report its wall time."""
    deadline = time.perf_counter() + timeout_s
    while refit_state(client).get("running"):
        if time.perf_counter() > deadline:
            raise RuntimeError("a refit already running did not finish in time")
        time.sleep(0.5)
    before = refit_state(client).get("refits", 0)
    start = time.perf_counter()
    response = client.post("/admin/refit", headers={"X-API-Key": KEY})
    if response.status_code != 202:
        raise RuntimeError(f"POST /admin/refit answered {response.status_code}: {response.text}")
    while True:
        state = refit_state(client)
        if not state.get("running") and (state.get("refits") or 0) > (before or 0):
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the first refit did not finish within {timeout_s:.0f}s")
        time.sleep(0.5)
    return {"wall_s": round(time.perf_counter() - start, 2), "state": state}


def evaluate(client: httpx.Client, stream: Stream, known: set[str], out: Served) -> None:
    """Before each evaluation event: the user's top K; then the event itself."""
    for n in stream.evaluation():
        user, item = stream.users[n], stream.items[n]
        if user not in known:
            out.user_s.append(timed(client, "POST", "/users", user_body(stream, user))[0])
            known.add(user)
        start = time.perf_counter()
        took, body = timed(
            client,
            "POST",
            "/recommend",
            {"user_id": user, "k": report.K, "exclude_seen": True, "explain": False},
        )
        out.recommend.append((start, start + took))
        served = [r["item_id"] for r in body["items"]]
        out.ranks.append(served.index(item) + 1 if item in served else 0)
        out.versions.append(body.get("model_version"))
        out.kinds.append(body.get("model_kind"))
        out.interaction_s.append(timed(client, "POST", "/interactions", interaction(stream, n))[0])


@contextlib.contextmanager
def running_server(
    variant: Variant, db: Path, options: set[str], args: argparse.Namespace
) -> Iterator[tuple[subprocess.Popen[bytes], str, float]]:
    """A ``coldbrew serve`` for ``variant`` over ``db`` on a free port, stopped on exit."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**checkout_env(), "COLDBREW_API_KEYS": KEY}
    command = server_command(variant, options, db, port, args.encoder)
    print(f"[{variant.name}] {' '.join(command[1:])}", flush=True)
    server, ready_s = start_server(command, env, base)
    try:
        yield server, base, ready_s
    finally:
        stop_server(server)


def catalogue_database(
    stream: Stream, options: set[str], args: argparse.Namespace, folder: Path
) -> dict[str, float]:
    """Load the catalogue once, over HTTP, into a database every variant starts from a copy of
    (encoding ml-1m's plots takes minutes on 2 cores; each variant would repeat the same work)."""
    variant = Variant("catalogue", "zeroshot")
    with running_server(variant, folder / DB_NAME, options, args) as (_, base, ready_s):
        start = time.perf_counter()
        with httpx.Client(base_url=base, timeout=600) as client:
            load_catalogue(client, stream)
        took = round(time.perf_counter() - start, 1)
    print(f"[catalogue] {len(stream.catalogue):,} items in {took}s", flush=True)
    return {"startup_s": round(ready_s, 1), "catalogue_s": took}


def cached_catalogue(
    stream: Stream, options: set[str], args: argparse.Namespace, tmp: Path
) -> tuple[Path, dict[str, Any]]:
    """The catalogue database: built in ``tmp``, or reused from ``--catalogue-cache`` when one
    was built there for the same items, encoder and checkout (``src/`` tree), else kept there."""
    if args.catalogue_cache is None:
        return tmp, catalogue_database(stream, options, args, tmp)
    blob = json.dumps([stream.catalogue, args.encoder, source_tree()], sort_keys=True)
    folder = args.catalogue_cache / hashlib.sha256(blob.encode()).hexdigest()[:16]
    figures_file = folder / "catalogue.json"
    if figures_file.exists():
        print(f"[catalogue] reused from {folder}", flush=True)
        return folder, {**json.loads(figures_file.read_text()), "reused_from": str(folder)}
    built = catalogue_database(stream, options, args, tmp)
    folder.mkdir(parents=True, exist_ok=True)
    copy_database(tmp, folder)
    figures_file.write_text(json.dumps(built))
    return folder, built


def source_tree() -> str:
    """The git tree id of this checkout's ``src/``; with uncommitted changes, a key never reused."""
    tree = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD:src"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "src"], capture_output=True, text=True
    ).stdout.strip()
    return f"{tree}-dirty-{time.time()}" if dirty else tree


def copy_database(source: Path, target: Path) -> None:
    """The SQLite file and its journal files, nothing else the server keeps beside them."""
    for file in source.iterdir():
        if file.is_file() and file.name.startswith(DB_NAME) and not file.name.endswith(".hnsw"):
            shutil.copy2(file, target / file.name)


def run_server_variant(
    variant: Variant, stream: Stream, options: set[str], args: argparse.Namespace, template: Path
) -> dict[str, Any]:
    """One variant on a fresh server over a fresh copy of the catalogue database: warm-up,
    (first refit), evaluation."""
    if variant.model == "hybrid" and not {"--model", "--refit-every"} <= options:
        return {"skipped": "this checkout's `coldbrew serve` has no --model/--refit-every"}
    with tempfile.TemporaryDirectory(prefix="coldbrew-replay-") as tmp:
        copy_database(template, Path(tmp))
        with running_server(variant, Path(tmp) / DB_NAME, options, args) as (server, base, ready):
            monitor = Monitor(server.pid, base)
            monitor.start()
            served = Served(phases={"startup_s": round(ready, 1)})
            try:
                with httpx.Client(base_url=base, timeout=600) as client:
                    drive(client, variant, stream, served, args)
                    final = server_figures(client, monitor)
            finally:
                monitor.halt.set()
                monitor.join(timeout=10)
    return summarise_served(served, monitor, final, stream, args)


def drive(
    client: httpx.Client, variant: Variant, stream: Stream, served: Served, args: argparse.Namespace
) -> None:
    known: set[str] = set()
    start = time.perf_counter()
    warm_up(client, stream, known, args.batch)
    served.phases["warmup_s"] = round(time.perf_counter() - start, 1)
    print(f"[{variant.name}] warm-up {served.phases['warmup_s']}s", flush=True)
    if variant.model == "hybrid":
        served.first_refit = first_refit(client, args.refit_timeout)
        print(f"[{variant.name}] first refit {served.first_refit['wall_s']}s", flush=True)
    start = time.perf_counter()
    evaluate(client, stream, known, served)
    served.phases["evaluation_s"] = round(time.perf_counter() - start, 1)
    print(f"[{variant.name}] evaluation {served.phases['evaluation_s']}s", flush=True)


def server_figures(client: httpx.Client, monitor: Monitor) -> dict[str, Any]:
    """The server's own refit state and refit lines of ``/metrics`` at the end."""
    out: dict[str, Any] = {}
    if monitor.poll_refit:
        out["refit_state"] = refit_state(client)
    text = client.get("/metrics").text
    out["metrics"] = [
        line for line in text.splitlines() if re.match(r"coldbrew_(refit|model_info)", line)
    ]
    return out


def in_spans(start: float, end: float, spans: list[tuple[float, float]]) -> bool:
    return any(start < high and end > low for low, high in spans)


def summarise_served(
    served: Served,
    monitor: Monitor,
    final: dict[str, Any],
    stream: Stream,
    args: argparse.Namespace,
) -> dict[str, Any]:
    spans = monitor.spans()
    eval_start = served.recommend[0][0] if served.recommend else 0.0
    during = [in_spans(a, b, spans) for a, b in served.recommend]
    durations = [b - a for a, b in served.recommend]
    ranks = np.asarray(served.ranks)
    out = figures(ranks, stream, args)
    out.update(
        {
            "latency": {
                "recommend": percentiles(durations),
                "recommend_during_refit": percentiles([d for d, x in zip(durations, during) if x]),
                "recommend_outside_refit": percentiles(
                    [d for d, x in zip(durations, during) if not x]
                ),
                "interaction": percentiles(served.interaction_s),
                "new_user": percentiles(served.user_s),
            },
            "phases": served.phases,
            "refit": {
                "first": served.first_refit or None,
                "first_wall_s": served.first_refit.get("wall_s") if served.first_refit else None,
                "count": (final.get("refit_state") or {}).get("refits"),
                "wall_s": [round(b - a, 2) for a, b in spans if a >= eval_start],
                "spans_in_evaluation": sum(1 for a, _ in spans if a >= eval_start),
                "server_last": monitor.lasts,
                "final_state": final.get("refit_state"),
                "metrics": final.get("metrics", []),
            },
            "versions_served": list(dict.fromkeys(str(v) for v in served.versions)),
            "kinds_served": list(dict.fromkeys(str(v) for v in served.kinds)),
            "peak_rss_mb": round(monitor.peak_rss_mb, 1),
            "per_event": {
                "rank": served.ranks,
                "recommend_ms": [round(d * 1e3, 2) for d in durations],
                "during_refit": during,
                "model_version": served.versions,
            },
        }
    )
    return out


def figures(ranks: np.ndarray, stream: Stream, args: argparse.Namespace) -> dict[str, Any]:
    """Quality figures of one variant's ranks on the evaluation events."""
    history = [report.history_bucket(h) for h in stream.history]
    ages = [report.age_bucket(a) for a in stream.item_age_days]
    return {
        "overall": report.summary(ranks, args.bootstrap),
        "windows": report.windows(ranks, args.windows),
        "history": report.by_bucket(ranks, history, [b[2] for b in report.HISTORY_BUCKETS]),
        "item_age": report.by_bucket(ranks, ages, [b[2] for b in report.AGE_BUCKETS]),
    }


# ---- the run ---------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("ml-100k", "ml-1m"), default="ml-100k")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--warmup", type=float, default=0.5, help="fraction sent as history")
    parser.add_argument("--eval-events", type=int, default=2000)
    parser.add_argument("--max-events", type=int, default=0, help="cut the stream (0: all)")
    parser.add_argument("--user-fraction", type=float, default=1.0, help="users kept (seed 0)")
    parser.add_argument(
        "--refit-every", default="200,1000", help="the hybrid's refit frequencies (interactions)"
    )
    parser.add_argument(
        "--variants", default="zeroshot,hybrid,popularity", help="which to run, comma-separated"
    )
    parser.add_argument("--encoder", default="default")
    parser.add_argument("--batch", type=int, default=1000, help="warm-up interactions per request")
    parser.add_argument("--refit-timeout", type=float, default=900.0, help="seconds")
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument(
        "--catalogue-cache",
        type=Path,
        default=None,
        help="keep the loaded catalogue's database here and reuse it on the next run",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "replay")
    parser.add_argument(
        "--smoke", action="store_true", help="ml-100k, 600 events, 200 evaluated: about a minute"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.dataset, args.max_events, args.eval_events = "ml-100k", 600, 200
        args.windows, args.bootstrap = 4, 200
        if args.refit_every == parser.get_default("refit_every"):
            args.refit_every = "100"
    if not 0.0 < args.warmup < 1.0:
        raise ValueError(f"--warmup must be between 0 and 1, not {args.warmup}")
    return args


def variants(args: argparse.Namespace) -> list[Variant]:
    wanted = {v.strip() for v in args.variants.split(",")}
    unknown = wanted - {"zeroshot", "hybrid", "popularity"}
    if unknown:
        raise ValueError(f"unknown variants {sorted(unknown)}; use zeroshot, hybrid, popularity")
    out = [Variant("zeroshot", "zeroshot")] if "zeroshot" in wanted else []
    if "hybrid" in wanted:
        for every in (int(e) for e in args.refit_every.split(",")):
            out.append(Variant(f"hybrid-every-{every}", "hybrid", every))
    return out


def add_ratios(results: dict[str, Any], resamples: int) -> None:
    base = results.get("popularity", {}).get("per_event", {}).get("rank")
    if base is None:
        return
    base_hits = report.hits_of_rank(np.asarray(base))
    for res in results.values():
        if "per_event" not in res or not base_hits.mean():
            continue
        hits = report.hits_of_rank(np.asarray(res["per_event"]["rank"]))
        res["hit_vs_popularity"] = {
            "ratio": round(float(hits.mean() / base_hits.mean()), 3),
            "ci95": report.ratio_interval(hits, base_hits, resamples),
        }


def describe(stream: Stream, args: argparse.Namespace) -> dict[str, Any]:
    first, last = stream.times[stream.n_warm], stream.times[stream.n_warm + stream.n_eval - 1]
    text = (
        f"Stream: {stream.dataset} positives (rating ≥ 4) in timestamp order, "
        f"{len(stream.users):,} events"
        + (f" (cut to the first {args.max_events})" if args.max_events else "")
        + (f", users kept: {args.user_fraction:.0%} (seed 0)" if args.user_fraction < 1 else "")
        + f"; {stream.n_warm:,} sent as history in batches of {args.batch}, then "
        f"{stream.n_eval:,} evaluated ({iso(first)} to {iso(last)}). Ratings below 4 are not "
        f"sent. Catalogue: {len(stream.catalogue):,} items, the spec's item text."
    )
    return {
        "description": text,
        "events": len(stream.users),
        "warmup_events": stream.n_warm,
        "evaluation_events": stream.n_eval,
        "ratings_below_4": "not sent",
        "evaluation_from": iso(first),
        "evaluation_to": iso(last),
    }


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = [round(x, 2) for x in os.getloadavg()]
    print(f"load average at start: {load_start}", flush=True)
    data = LOADERS[args.dataset](data_root(args.data_root))
    stream = build_stream(data, args)
    options = server_options()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="coldbrew-catalogue-") as tmp:
        template, catalogue = cached_catalogue(stream, options, args, Path(tmp))
        for variant in variants(args):
            results[variant.name] = run_server_variant(variant, stream, options, args, template)
    if "popularity" in args.variants:
        ranks = popularity_ranks(stream)
        results["popularity"] = {
            **figures(ranks, stream, args),
            "per_event": {"rank": ranks.tolist()},
        }
    add_ratios(results, args.bootstrap)
    out = write(results, stream, options, args, {"catalogue": catalogue, "load": load_start})
    print(out, flush=True)
    return 0


def write(
    results: dict[str, Any],
    stream: Stream,
    options: set[str],
    args: argparse.Namespace,
    started: dict[str, Any],
) -> str:
    """JSON, Markdown and the plot into ``--out``; returns the Markdown."""
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"replay-{stream.dataset}" + ("-smoke" if args.smoke else "")
    body = {
        "dataset": stream.dataset,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, python "
        f"{platform.python_version()}",
        "git": git_head(),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "server_options": sorted(options),
        "stream": describe(stream, args),
        "catalogue": started["catalogue"],
        "load_average": {"start": started["load"], "end": [round(x, 2) for x in os.getloadavg()]},
        "targets": report.targets(results) if "popularity" in results else {},
        "results": results,
        "context": {"history": stream.history, "item_age_days": stream.item_age_days},
    }
    (args.out / f"{stem}.json").write_text(json.dumps(body, indent=1) + "\n")
    markdown = report.markdown(body)
    (args.out / f"{stem}.md").write_text(markdown)
    report.plot(
        results, args.out / f"{stem}.png", f"{stream.dataset} replay: {stream.n_eval} events"
    )
    print(f"load average at end: {body['load_average']['end']}", flush=True)
    return markdown


def git_head() -> str:
    found = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return found.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
