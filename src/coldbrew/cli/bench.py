"""``coldbrew bench``: every model on every protocol of a dataset, as JSON, Markdown and PNG."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from coldbrew.bench.provenance import provenance
from coldbrew.bench.report import markdown, plot_bars, plot_cold_to_warm, write_json
from coldbrew.bench.runner import PROTOCOLS, TIMED, BenchConfig, ResultRow, run_benchmark
from coldbrew.bench.system import library_versions, machine, now, source
from coldbrew.cli.common import (
    add_dataset_args,
    add_encoder_args,
    add_ray_args,
    load_from_args,
    ray_plan_from_args,
    route_encoder,
)
from coldbrew.cli.device import add_device_arg, check_ray_device
from coldbrew.data.schema import has_timestamps
from coldbrew.models.recipes import FACTORIES, OPT_IN, parse_models
from coldbrew.text.runtime import runtime_or_default


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "bench",
        help="benchmark every model on the cold-item, cold-user, warm, warm-latest and next-item "
        "protocols",
        description="Fit each model on each protocol's training split (splits are saved under "
        "OUT/splits and reused) and rank for every test user. Writes OUT/results.json, "
        "OUT/results.md and PNG plots (cold-to-warm curve, bars per protocol).",
    )
    add_dataset_args(parser)
    add_encoder_args(parser)
    add_device_arg(parser, "a sentence-transformers encoder (bench encodes, it trains nothing)")
    parser.add_argument(
        "--protocol",
        default="all",
        choices=[*PROTOCOLS, "all"],
        help="evaluation protocol (default: %(default)s)",
    )
    parser.add_argument(
        "--models",
        default="all",
        help=f"comma-separated: {', '.join(FACTORIES)}, or all (all but {', '.join(OPT_IN)}; "
        "default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=42, help="split seed (default: %(default)s)")
    parser.add_argument(
        "--k-values",
        default="0,1,3,5,10,20",
        help="revealed interactions for cold-user (default: %(default)s)",
    )
    parser.add_argument(
        "--max-users",
        type=int,
        help="evaluate at most this many test users per protocol (seeded sample; default: all)",
    )
    parser.add_argument(
        "--latency-users",
        type=int,
        default=100,
        help="single-query calls timed per protocol (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, help="output directory (default: runs/bench-<dataset>)")
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep the other models' rows of an earlier OUT/results.json (rerun a few models)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_ray_args(parser, "the catalogue's encoding and every model fit (one Ray task each)")
    parser.set_defaults(func=run)


def _k_values(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--k-values expects integers like 0,1,5, got {text!r}") from None
    if not values or min(values) < 0:
        raise ValueError(f"--k-values must be non-negative integers, got {text!r}")
    return values


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    return BenchConfig(
        protocols=PROTOCOLS if args.protocol == "all" else (args.protocol,),
        models=tuple(parse_models(args.models)),
        encoder=args.encoder,
        runtime=runtime_or_default(args.runtime),
        device=args.device,
        cache_dir=args.cache_dir or None,
        seed=args.seed,
        k_values=_k_values(args.k_values),
        max_users=args.max_users,
        latency_users=args.latency_users,
        show_progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
    check_ray_device(args)
    dataset = load_from_args(args)
    route_encoder(args, dataset)
    config = config_from_args(args)
    print(dataset.summary(), file=sys.stderr)
    if args.protocol == "all" and not has_timestamps(dataset.positives()):
        skipped = [p for p in config.protocols if p in TIMED]
        config = replace(config, protocols=tuple(p for p in config.protocols if p not in TIMED))
        print(f"{dataset.name} has no timestamps: skipping {', '.join(skipped)}", file=sys.stderr)
    out = args.out or Path("runs") / f"bench-{dataset.name}"
    out.mkdir(parents=True, exist_ok=True)
    plan = ray_plan_from_args(args)
    fits = None
    if plan is not None:
        from coldbrew.cluster.bench import ray_fits

        fits = ray_fits(plan)
    result = run_benchmark(dataset, config, out, fits=fits)
    command = (
        "coldbrew " + shlex.join(sys.argv[1:])
        if sys.argv[1:2] == ["bench"]
        else "coldbrew bench (called from Python)"
    )
    meta = {
        "dataset": dataset.name,
        "summary": dataset.summary(),
        "seed": config.seed,
        "encoder": config.encoder,
        "date": now(),
        "source": source(),
        "machine": machine(),
        "libraries": library_versions(),
        "command": command,
        "config": asdict(config),
        "ray": None if plan is None else {"address": args.ray, **asdict(plan)},
    }
    meta["commands"] = [command]
    meta["provenance"] = provenance(command=command)
    rows, splits = result.rows, result.splits
    if args.append and (out / "results.json").exists():
        rows, splits = _merge_earlier(out / "results.json", meta, rows, splits)
    write_json(out / "results.json", meta, splits, rows)
    report = markdown(meta, splits, rows)
    (out / "results.md").write_text(report)
    title = f"{dataset.name} (seed {config.seed})"
    plot_cold_to_warm(rows, out / "cold_to_warm.png", title)
    plot_bars(rows, out / "bars.png", title)
    print(report)
    print(f"wrote {out}/results.json, results.md and plots", file=sys.stderr)
    return 0


def _merge_earlier(
    path: Path, meta: dict[str, Any], rows: list[ResultRow], splits: dict[str, Any]
) -> tuple[list[ResultRow], dict[str, Any]]:
    """Earlier rows of models not rerun now (same dataset and seed only) with the new rows, in
    the recipes' model order."""
    earlier = json.loads(path.read_text())
    old_meta = earlier["meta"]
    if old_meta["dataset"] != meta["dataset"] or old_meta["seed"] != meta["seed"]:
        raise ValueError(
            f"--append: {path} holds {old_meta['dataset']} seed {old_meta['seed']}, "
            f"not {meta['dataset']} seed {meta['seed']}"
        )
    rerun = {r.model for r in rows}
    kept = [ResultRow.from_dict(r) for r in earlier["results"] if r["model"] not in rerun]
    meta["commands"] = [*old_meta.get("commands", [old_meta["command"]]), meta["command"]]
    order = {name: i for i, name in enumerate(FACTORIES)}
    merged = sorted(kept + rows, key=lambda r: order.get(r.model, len(order)))  # stable
    return merged, {**earlier["splits"], **splits}
