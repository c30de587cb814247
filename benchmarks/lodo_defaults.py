"""Defaults chosen leave-one-dataset-out (issue 24, item 7): each candidate setting of the
hybrid's weight search scored on every dataset's inner validation, chosen on four datasets and
confirmed on the fifth, in turn.

``score``: for one dataset's bench split (seed 42, cold items by default) the default hybrid's
parts are fit on the inner training data carved from the split's training part exactly as
``HybridRecommender.fit`` does (``part_validation.default_hybrid``), and its held-out-item
queries are scored once by every part. Each candidate (grid step, ``max_parts``, the
out-of-fold rule on or off; :func:`candidates`) runs the hybrid's own weight search
(:class:`~coldbrew.models.weights.WeightSearch`) on half of the queries and is measured
(NDCG@20) on the other half, and the other way round, over ``--repeats`` random halvings; the
figure is that mean as a ratio to the best single part's NDCG@20 on the same queries. No test
interaction is read.

``rotate``: from the five ``score`` reports, for each held-out dataset the candidate with the
best geometric-mean ratio over the other four (ties: the shipped default, then the order of
:func:`candidates`), its ratio on the held-out dataset and the shipped default's there.

    PYTHONPATH=src:benchmarks python benchmarks/lodo_defaults.py score --dataset ml-100k \
        --cache-dir /tmp/lodo/cache-ml-100k --out benchmarks/results/quality/lodo/ml-100k.json
    R=benchmarks/results/quality/lodo
    PYTHONPATH=src:benchmarks python benchmarks/lodo_defaults.py rotate $R/ml-100k.json \
        $R/ml-1m.json $R/ml-latest-small.json $R/citeulike-a.json $R/online-retail.json \
        --out $R/rotation.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.bench.provenance import stamped
from coldbrew.models.blend import Prepared, blend_ndcg
from coldbrew.models.weights import USER_EDGES, USER_KINDS, WeightSearch


@dataclass(frozen=True)
class Candidate:
    """One setting of the weight search a default could be."""

    grid_step: float
    max_parts: int
    out_of_fold: bool

    @property
    def name(self) -> str:
        if self.max_parts == 1:
            return "best single part"
        rule = "out of fold" if self.out_of_fold else "1-SE only"
        return f"step {self.grid_step:g}, <= {self.max_parts} parts, {rule}"


SHIPPED = Candidate(0.2, 3, True)
"""The hybrid's default (``HybridRecommender``: ``grid_step=0.2``, ``max_parts=3``, the rule)."""


def candidates() -> list[Candidate]:
    """The shipped default first, then the best single part (any step: one part at a time),
    then every step x ``max_parts`` in 2-4 x the out-of-fold rule on and off, the coarse
    (cheap) grids first: a run cut short has scored the same first ones on every dataset."""
    out = [SHIPPED, Candidate(0.2, 1, True)]
    for step in (0.25, 0.2, 0.1):
        for parts in (2, 3, 4):
            for oof in (True, False):
                if Candidate(step, parts, oof) != SHIPPED:
                    out.append(Candidate(step, parts, oof))
    return out


class Remembered:
    """:func:`~coldbrew.models.blend.blend_ndcg` for the searches of one task of item cell
    ``cell``: each query's NDCG@20 under each weighting of that cell, computed once over all
    the task's queries and looked up after (a query is found by its scores; with every
    candidate in one cell, a query's blend reads only its bucket's and kind's weights there)."""

    def __init__(self, prep: Prepared, cell: int) -> None:
        self.prep, self.cell = prep, cell
        self.row = {self.key(prep, q): q for q in range(len(prep.n_relevant))}
        self.points: dict[bytes, np.ndarray] = {}

    @staticmethod
    def key(prep: Prepared, q: int) -> bytes:
        rows = [*(p[q] for p in prep.parts), prep.relevant[q], prep.pad[q], prep.ties[q]]
        return b"".join(r.tobytes() for r in rows)

    def __call__(self, sub: Prepared, tables: np.ndarray) -> np.ndarray:
        tables = np.asarray(tables, dtype=np.float32)
        if tables.ndim != 5 or not np.all(sub.cells == self.cell):
            return blend_ndcg(sub, tables)
        rows = np.asarray([self.row[self.key(sub, q)] for q in range(len(sub.n_relevant))])
        out = np.zeros((len(tables), len(rows)))
        for b, kind in set(zip(sub.buckets.tolist(), sub.known.tolist())):
            mine = (sub.buckets == b) & (sub.known == kind)
            points = tables[:, b, self.cell, kind]
            missing = [p for p in np.unique(points, axis=0) if p.tobytes() not in self.points]
            if missing:
                for p, values in zip(missing, blend_ndcg(self.prep, np.asarray(missing))):
                    self.points[p.tobytes()] = values
            out[:, mine] = np.stack([self.points[p.tobytes()][rows[mine]] for p in points])
        return out


def search_for(
    cand: Candidate, parts: Sequence[str], seed: int, ndcg: Any = blend_ndcg
) -> WeightSearch:
    """A fresh weight search of ``parts`` under ``cand``, equal weights to start, as a hybrid's."""
    n = len(parts)
    weights = np.full((len(USER_EDGES), 2, len(USER_KINDS), n), 1.0 / n, np.float32)
    return WeightSearch(
        tuple(parts), weights, cand.grid_step, cand.max_parts, 30, seed, cand.out_of_fold, ndcg
    )


def cross_fitted(
    cand: Candidate,
    prep: Prepared,
    every_task: Sequence[Prepared],
    parts: Sequence[str],
    cell: int,
    repeats: int,
    seed: int = 42,
    ndcg: Any = blend_ndcg,
) -> np.ndarray:
    """Each query of ``prep`` (one task of item cell ``cell``, every query with something to
    find) scored by the weights ``cand``'s search chose on the other half of the queries,
    averaged over ``repeats`` random halvings. The search's grid is the one a hybrid builds
    from all its validation tasks (``every_task``); ``ndcg``: the searches' measure
    (:class:`Remembered` saves recomputing it)."""
    search = search_for(cand, parts, seed)
    grid = search.grid(every_task)
    n = len(prep.n_relevant)
    rng = np.random.default_rng(seed)
    total = np.zeros(n)
    for _ in range(repeats):
        half = rng.permutation(n) < n // 2
        for fit in (half, ~half):
            search = search_for(cand, parts, seed, ndcg)
            search.fit({cell: [prep.take_queries(fit)]}, grid=grid)
            total[~fit] += blend_ndcg(prep.take_queries(~fit), search.weights)
    return total / repeats


def best_part(prep: Prepared, parts: Sequence[str]) -> tuple[str, float]:
    """The single part with the highest mean NDCG@20 on all of ``prep``'s queries."""
    eye = np.eye(len(parts), dtype=np.float32)
    means = blend_ndcg(prep, eye).mean(axis=1)
    j = int(np.argmax(means))
    return parts[j], float(means[j])


def geomean(values: Sequence[float]) -> float:
    return float(np.exp(np.mean(np.log(values))))


def rotate(
    ratios: Mapping[str, Mapping[str, float]], order: Sequence[str], shipped: str
) -> dict[str, dict[str, Any]]:
    """For each held-out dataset of ``ratios`` (dataset -> candidate name -> ratio): the
    candidate with the best geometric-mean ratio over the other datasets (ties within 1e-9:
    ``shipped``, then ``order``), and the held-out dataset's ratio for it and for ``shipped``."""
    out: dict[str, dict[str, Any]] = {}
    for held in ratios:
        rest = [d for d in ratios if d != held]
        score = {c: geomean([ratios[d][c] for d in rest]) for c in order}
        top = max(score.values())
        tied = [c for c in order if score[c] >= top - 1e-9]
        chosen = shipped if shipped in tied else tied[0]
        out[held] = {
            "chosen": chosen,
            "is_shipped": chosen == shipped,
            "tied_on_the_others": tied,
            "chosen_on_the_others": score[chosen],
            "shipped_on_the_others": score[shipped],
            "held_out_ratio_chosen": ratios[held][chosen],
            "held_out_ratio_shipped": ratios[held][shipped],
            "on_the_others": score,
        }
    return out


def score(args: argparse.Namespace) -> None:
    from part_validation import default_hybrid

    t0 = time.time()
    _, train, _, hybrid = default_hybrid(
        args.dataset, args.protocol, args.cache_dir, args.split_dir
    )
    tasks = hybrid.fit_parts_for_validation(train)
    hybrid.validation.update(hybrid._fit_context_weights(tasks))
    fitted = time.time() - t0
    print(f"parts fit in {fitted:.0f}s", flush=True)
    cells = (hybrid.item_counts > 0).astype(int)
    preps = [hybrid.prepare(t, cells) for t in tasks]
    cell = 0 if args.protocol == "cold-item" else 1
    mine = [p for t, p in zip(tasks, preps) if t.cell == cell]
    if len(mine) != 1:
        raise SystemExit(f"{args.dataset}: {len(mine)} validation tasks of cell {cell}, not 1")
    prep = mine[0].take_queries(mine[0].n_relevant > 0)
    parts = list(hybrid.parts)
    name, base = best_part(prep, parts)
    report: dict[str, Any] = {
        "dataset": args.dataset,
        "protocol": args.protocol,
        "queries": len(prep.n_relevant),
        "repeats": args.repeats,
        "shipped": SHIPPED.name,
        "best_part": name,
        "best_part_ndcg20": base,
        "context_weights": hybrid.validation,
        "candidates": [],
        "parts_fit_s": fitted,
    }
    remembered = Remembered(prep, cell)
    for cand in candidates():
        c0 = time.process_time()
        values = cross_fitted(cand, prep, preps, parts, cell, args.repeats, ndcg=remembered)
        row = {
            "candidate": cand.name,
            **asdict(cand),
            "ndcg20": float(values.mean()),
            "ratio": float(values.mean() / base),
            "cpu_s": time.process_time() - c0,
        }
        report["candidates"].append(row)
        print(json.dumps(row), flush=True)
        # written after every candidate: a run stopped early keeps what it scored
        report["seconds"] = time.time() - t0
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(stamped(report), indent=1))


def rotate_reports(args: argparse.Namespace) -> None:
    reports = [json.loads(Path(p).read_text()) for p in args.reports]
    ratios = {r["dataset"]: {c["candidate"]: c["ratio"] for c in r["candidates"]} for r in reports}
    # the candidates every dataset scored (a run stopped early scored the first ones)
    order = [c.name for c in candidates() if all(c.name in r for r in ratios.values())]
    rotations = rotate(ratios, order, SHIPPED.name)
    print(
        "| held out | chosen on the others | the shipped default? | its geometric mean there "
        "| held-out ratio, chosen | held-out ratio, shipped |"
    )
    print("|---|---|---|---|---|---|")
    for held, row in rotations.items():
        print(
            f"| {held} | {row['chosen']} | {'yes' if row['is_shipped'] else 'no'} "
            f"| {row['chosen_on_the_others']:.4f} | {row['held_out_ratio_chosen']:.4f} "
            f"| {row['held_out_ratio_shipped']:.4f} |"
        )
    report = {
        "protocol": reports[0]["protocol"],
        "reports": list(args.reports),
        "shipped": SHIPPED.name,
        "candidates_scored_everywhere": order,
        "ratios": ratios,
        "rotations": rotations,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(stamped(report), indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    one = sub.add_parser("score", help="every candidate on one dataset's inner validation")
    one.add_argument("--dataset", required=True)
    one.add_argument("--protocol", default="cold-item", choices=["cold-item"])
    one.add_argument("--cache-dir", default=None)
    one.add_argument("--split-dir", default="/tmp/lodo/splits")
    one.add_argument("--repeats", type=int, default=5, help="random halvings of the queries")
    one.add_argument("--out", required=True)
    one.set_defaults(func=score)
    rot = sub.add_parser("rotate", help="choose on four datasets, confirm on the fifth")
    rot.add_argument("reports", nargs="+", help="score reports, one per dataset")
    rot.add_argument("--out", required=True)
    rot.set_defaults(func=rotate_reports)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
