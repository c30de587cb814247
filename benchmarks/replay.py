"""Replay benchmark: what a live ``coldbrew serve`` recommends, measured over HTTP only.

A dataset's positives (ratings ≥ 4; every first purchase on online-retail, where products first
sold late arrive as items with no interaction yet) are streamed in timestamp order into a live
service, the catalogue (the dataset spec's item text) having been loaded first through the batch
endpoints.
A user is created with their attributes at their first positive. The first part of the stream
(``--warmup``, default half) is sent as history in batches; then, before each of the next
``--eval-events`` positives, the service is asked for that user's top 20 (seen items excluded)
and the rank of the held-out item is recorded; then the event is sent. Ratings below 4 are not
sent at all (the issue's protocol: only positives are replayed, so "seen" means "liked").

The catalogue and the warm-up history are sent once, over HTTP, to a zero-shot server with refits
off (encoding ml-1m's plots takes minutes on 2 cores); each variant then runs on a fresh server
over its own copy of that database (``--catalogue-cache`` keeps the catalogue for later runs).
A hybrid variant's evaluation starts from a model fitted on that history (the refit the service
starts itself when it has data but no model, else ``POST /admin/refit``; waited for); later
refits come from ``--refit-every`` during the evaluation, and while one runs the stream is held
to its real pace (see ``replay_service.py``).
Variants, on the same stream: today's zero-shot service, the refitting hybrid at each
``--refit-every`` frequency, and plain popularity computed on the client (positives so far, the
user's seen items excluded, ties by catalogue order).

The server runs this checkout's code (its ``src/`` first on ``PYTHONPATH``); run the script
from the repository root the same way:

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/replay.py --dataset ml-100k
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/replay.py --smoke --out /tmp/r
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import replay_report as report
from liveserver import percentiles
from replay_service import (
    NotOffered,
    RefitLog,
    Served,
    Variant,
    history_database,
    run_variant,
    server_options,
)
from replay_stream import Stream, build_stream, popularity_ranks

from coldbrew.bench.provenance import stamped
from coldbrew.data.benchmarks import LOADERS, data_root, load_with_context

REPO = Path(__file__).resolve().parents[1]


def served_variant(
    variant: Variant, stream: Stream, options: set[str], args: argparse.Namespace, history: Path
) -> dict[str, Any]:
    """Run one served variant and summarise it (or say why it was skipped)."""
    try:
        served, log, peak_rss_mb, final = run_variant(variant, stream, options, args, history)
    except NotOffered as exc:
        print(f"[{variant.name}] skipped: {exc}", flush=True)
        return {"skipped": str(exc)}
    return {
        **figures(np.asarray(served.ranks), stream, args),
        "latency": latency(served, log),
        "phases": served.phases,
        "refit": refits(served, log, final),
        "versions_served": list(dict.fromkeys(str(v) for v in served.versions)),
        "kinds_served": list(dict.fromkeys(str(v) for v in served.kinds)),
        "paced_events": served.paced_events,
        "peak_rss_mb": round(peak_rss_mb, 1),
        "per_event": {
            "rank": served.ranks,
            "recommend_ms": [round(d * 1e3, 2) for _, d in served.recommend],
            "model_version": served.versions,
        },
    }


def overlaps(start: float, seconds: float, spans: list[tuple[float, float]]) -> bool:
    return any(start < high and start + seconds > low for low, high in spans)


def latency(served: Served, log: RefitLog) -> dict[str, Any]:
    """Client-side latencies: evaluation requests, and every recommend while a refit ran."""
    spans = log.spans()
    asked = served.recommend + served.probes
    during = [d for s, d in asked if overlaps(s, d, spans)]
    return {
        "recommend": percentiles([d for _, d in served.recommend]),
        "recommend_during_refit": percentiles(during),
        "recommend_outside_refit": percentiles(
            [d for s, d in served.recommend if not overlaps(s, d, spans)]
        ),
        "probes": percentiles([d for _, d in served.probes]),
        "interaction": percentiles(served.interaction_s),
        "new_user": percentiles(served.user_s),
    }


def refits(served: Served, log: RefitLog, final: dict[str, Any]) -> dict[str, Any]:
    """Refit count and wall times as the server reported them (start to finish)."""
    eval_start = served.recommend[0][0] if served.recommend else float("inf")
    spans = log.spans()
    state = final.get("refit_state") or {}
    return {
        "first": served.first_refit or None,
        "first_wall_s": round(spans[0][1] - spans[0][0], 1) if served.first_refit else None,
        "count": state.get("refits"),
        "outcomes": state.get("outcomes"),
        "in_evaluation": sum(1 for a, _ in spans if a >= eval_start),
        "wall_s": [round(b - a, 1) for a, b in spans if b in log.finished],
        "unfinished_at_end": sum(1 for _, b in spans if b not in log.finished),
        "server_seconds": [round(float(x.get("seconds", 0)), 1) for x in log.finished.values()],
        "validation": [x.get("validation") for x in log.finished.values()],
        "final_state": state or None,
        "metrics": final.get("metrics", []),
    }


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
    parser.add_argument(
        "--dataset", choices=("ml-100k", "ml-1m", "online-retail"), default="ml-100k"
    )
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
    parser.add_argument(
        "--context",
        action="store_true",
        help="send each event, and the query asked before it, in the event's context "
        "(online-retail: time and country; MovieLens: time)",
    )
    parser.add_argument("--batch", type=int, default=1000, help="warm-up interactions per request")
    parser.add_argument("--refit-timeout", type=float, default=900.0, help="seconds")
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument(
        "--catalogue-cache",
        type=Path,
        default=None,
        help="keep the loaded catalogue's database here and reuse it on later runs",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "replay")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="ml-100k's first 2,000 positives, 1,000 as history, 200 evaluated: a few minutes",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.dataset, args.max_events, args.eval_events = "ml-100k", 2000, 200
        args.windows, args.bootstrap = 4, 200
        if args.refit_every == parser.get_default("refit_every"):
            args.refit_every = "150"  # one refit during the evaluation
    args.k = report.K
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
        f"Stream: {stream.dataset} positives ({stream.positives}) in timestamp order, "
        f"{len(stream.users):,} events"
        + (f" (cut to the first {args.max_events})" if args.max_events else "")
        + (f", users kept: {args.user_fraction:.0%} (seed 0)" if args.user_fraction < 1 else "")
        + f"; {stream.n_warm:,} sent as history in batches of {args.batch}, then "
        f"{stream.n_eval:,} evaluated ({iso(first)} to {iso(last)}). Interactions that are not "
        f"positive are not sent. Catalogue: {len(stream.catalogue):,} items, the spec's item text."
        + (
            " Each event, and the query asked before it, carries the event's context."
            if stream.contexts
            else ""
        )
    )
    return {
        "description": text,
        "events": len(stream.users),
        "warmup_events": stream.n_warm,
        "evaluation_events": stream.n_eval,
        "positives": stream.positives,
        "ratings_below_4": "not sent",
        "sends_context": bool(stream.contexts),
        "evaluation_from": iso(first),
        "evaluation_to": iso(last),
    }


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = [round(x, 2) for x in os.getloadavg()]
    print(f"load average at start: {load_start}", flush=True)
    root = data_root(args.data_root)
    data = load_with_context(args.dataset, root) if args.context else LOADERS[args.dataset](root)
    stream = build_stream(data, args)
    options = server_options()
    results: dict[str, Any] = {}
    if "popularity" in args.variants:
        ranks = popularity_ranks(stream)
        results["popularity"] = {
            **figures(ranks, stream, args),
            "per_event": {"rank": ranks.tolist()},
        }
    with tempfile.TemporaryDirectory(prefix="coldbrew-history-") as tmp:
        history, built = Path(tmp), history_database(stream, options, args, Path(tmp))
        started = {"history": built, "load": load_start}
        for variant in variants(args):
            results[variant.name] = served_variant(variant, stream, options, args, history)
            add_ratios(results, args.bootstrap)
            write(order(results), stream, options, args, started)  # kept after each variant
    add_ratios(results, args.bootstrap)
    print(write(order(results), stream, options, args, started), flush=True)
    return 0


def order(results: dict[str, Any]) -> dict[str, Any]:
    """Served variants first, popularity last (as the tables show them)."""
    return {k: results[k] for k in sorted(results, key=lambda k: k == "popularity")}


def write(
    results: dict[str, Any],
    stream: Stream,
    options: set[str],
    args: argparse.Namespace,
    started: dict[str, Any],
) -> str:
    """JSON, Markdown and the plot into ``--out``; returns the Markdown."""
    args.out.mkdir(parents=True, exist_ok=True)
    stem = output_stem(stream.dataset, args)
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
        "history_database": started["history"],
        "load_average": {"start": started["load"], "end": [round(x, 2) for x in os.getloadavg()]},
        "targets": report.targets(results) if "popularity" in results else {},
        "results": results,
        "context": {"history": stream.history, "item_age_days": stream.item_age_days},
    }
    (args.out / f"{stem}.json").write_text(json.dumps(stamped(body), indent=1) + "\n")
    markdown = report.markdown(body)
    (args.out / f"{stem}.md").write_text(markdown)
    report.plot(
        results, args.out / f"{stem}.png", f"{stream.dataset} replay: {stream.n_eval} events"
    )
    print(f"load average at end: {body['load_average']['end']}", flush=True)
    return markdown


def output_stem(dataset: str, args: argparse.Namespace) -> str:
    """``replay-<dataset>``, plus what differs from the issue's protocol (all users, N = 2000)."""
    parts = [f"replay-{dataset}"]
    if args.smoke:
        parts.append("smoke")
    else:
        if args.user_fraction < 1.0:
            parts.append(f"users{round(args.user_fraction * 100)}")
        if args.eval_events != 2000:
            parts.append(f"n{args.eval_events}")
    if args.context:
        parts.append("context")
    return "-".join(parts)


def git_head() -> str:
    found = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return found.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
