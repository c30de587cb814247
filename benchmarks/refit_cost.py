"""What a refit costs, step by step and part by part, against one plain ALS fit (issue 29).

Builds a service's state in a temporary SQLite store (every item of the dataset with its stored
vector, every user, and the positive events but the newest ``--new``), then, in this one
process: times one plain ``implicit`` ALS fit of the same users x items matrix (the recipe's
64-factor ALS, one thread, as a refit runs it), runs :func:`~coldbrew.live.refit.run_refit`
(the job the service's refit process runs) with no serving version, adds the ``--new`` events,
and runs it again with that version serving (for each ``--modes``: ``full`` fits everything
afresh as before issue 29, ``reuse`` lets the refit reuse the serving version). Prints a table
of wall and CPU seconds per step and per part, with each refit's ratio to the ALS fit, and
writes the JSON to ``--out``. ``--spawn`` runs each refit where the service runs it, through its
launcher (a process forked from the refit server, or in checkouts before it a spawned child: the
process start, imports and the encoder's load included); the refit server's one-off imports are
reported apart (``refit_server``). ``--state DIR`` keeps the store and the first refit's
version in ``DIR`` and later runs start from a copy of them, timing only the second refit (the
first one's figures are those of the run that kept them).

    OPENBLAS_NUM_THREADS=1 python benchmarks/refit_cost.py --dataset ml-100k
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from replay import git_head

from coldbrew.bench.provenance import stamped
from coldbrew.data.benchmarks import LOADERS, data_root
from coldbrew.data.idmap import IdMap
from coldbrew.live.importer import dataset_records
from coldbrew.live.records import POSITIVE_EVENTS, dataset_from_records, item_text
from coldbrew.live.refit import RefitJob, run_refit
from coldbrew.live.refitter import Launcher, launcher
from coldbrew.models.cf import interaction_matrix
from coldbrew.store import Interaction, Store
from coldbrew.text.cache import EmbeddingCache
from coldbrew.text.encoder import Encoder
from coldbrew.text.factory import make_encoder
from coldbrew.text.runtime import RUNTIMES

ALS = {"factors": 64, "regularization": 0.05, "alpha": 10.0, "iterations": 15}
"""The recipe's ALS (``models/recipes.py`` ``_als``), fitted plainly."""


def seed_store(url: str, records: Any, encoder: Encoder, cache_dir: Path) -> None:
    """Items with their stored vectors, users and ``records.interactions`` into ``url``."""
    texts = [item_text(i) for i in records.items]
    vectors = EmbeddingCache(cache_dir).encode(encoder, texts, show_progress=False)
    store = Store(url)
    try:
        with store.transaction() as session:
            store.register_model(session, encoder.name, encoder.config(), encoder.dim)
            store.upsert_items(session, records.items)
            store.put_vectors(
                session, "item", encoder.name, [i.item_id for i in records.items], vectors
            )
            store.upsert_users(session, records.users)
        add_events(store, records.interactions)
    finally:
        store.close()


def add_events(store: Store, events: list[Interaction]) -> None:
    with store.transaction() as session:
        store.upsert_interactions(session, events)


def newest(events: list[Interaction], count: int) -> list[Interaction]:
    """The newest ``count`` of ``events`` (oldest first) that are later than every other event:
    fewer where the next-newest event shares a timestamp with them. The refit holds out only
    events later than the serving version's last one (``live.judge.split_recent``), so a new
    event tied with an old one would be learned, not held out, and the candidate would learn
    other events than the serving version (ItemKNN then learns every row again)."""
    if count >= len(events):
        return list(events)
    before = events[len(events) - count - 1].timestamp
    return [i for i in events[len(events) - count :] if i.timestamp > before]


JOB_FIELDS = {f.name for f in dataclasses.fields(RefitJob)}


def runtime_job(job: RefitJob, runtime: str | None) -> RefitJob:
    """``job`` on ``runtime`` (the service's ``--runtime``) where this checkout's job carries
    one (issue 29; before, a refit rebuilt its encoder on PyTorch); ``None``: the job's default."""
    if runtime is None:
        return job
    if "runtime" not in JOB_FIELDS:
        raise SystemExit("this checkout's refit job carries no runtime (it encodes on PyTorch)")
    return dataclasses.replace(job, runtime=runtime)  # type: ignore[call-arg]


def service_launcher(job: RefitJob) -> Launcher:
    """The service's launcher for ``job``, its refit server importing the libraries of the job's
    encoder on its runtime where this checkout chooses them (else its fixed list)."""
    if "libraries" not in inspect.signature(launcher).parameters:
        return launcher(None)
    from coldbrew.live.worker import encoder_libraries

    libraries = encoder_libraries(job.encoder, job.runtime)  # type: ignore[attr-defined]
    return launcher(None, libraries=libraries)  # type: ignore[call-arg]


FIRST = "first.json"
"""In a ``--state`` folder: the first refit's outcome, written last (the state is complete)."""


def keep_state(scratch: Path, state: Path, first: dict[str, Any]) -> None:
    """Copy the store (the new events added) and the first refit's versions from ``scratch``
    into ``state``, the first refit's outcome last."""
    shutil.rmtree(state, ignore_errors=True)
    shutil.copytree(scratch, state)
    (state / FIRST).write_text(json.dumps(first, default=str) + "\n")


def kept_state(state: Path, scratch: Path) -> dict[str, Any]:
    """The first refit's outcome, with the store and versions :func:`keep_state` kept copied
    into ``scratch`` (each run refits a copy: a refit commits its version there)."""
    shutil.copytree(state, scratch, dirs_exist_ok=True)
    (scratch / FIRST).unlink()
    return dict(json.loads((state / FIRST).read_text()))


def plain_als(records: Any, events: list[Interaction], seed: int, repeats: int) -> dict[str, Any]:
    """Wall and CPU seconds of ``repeats`` plain ALS fits of the positive events' matrix."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    dataset = dataset_from_records(records.items, records.users, events)
    matrix, _ = interaction_matrix(dataset, IdMap([i.item_id for i in records.items]))
    walls, cpus = [], []
    with threadpool_limits(1, "blas"):
        for _ in range(repeats):
            model = AlternatingLeastSquares(**ALS, random_state=seed, num_threads=1)
            wall, cpu = time.perf_counter(), time.process_time()
            model.fit(matrix, show_progress=False)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return {
        "matrix": list(matrix.shape),
        "nnz": int(matrix.nnz),
        "wall_s": round(statistics.median(walls), 3),
        "cpu_s": round(statistics.median(cpus), 3),
        "wall_s_each": [round(w, 3) for w in walls],
    }


def refit(job: RefitJob, encoder: Encoder, mode: str, launch: Launcher | None) -> dict[str, Any]:
    """One refit, timed: in this process, or through ``launch`` (the service's launcher: its
    process start, imports and encoder load included; CPU of that process). ``mode`` is passed
    on where this checkout's job knows it."""
    if "reuse" in JOB_FIELDS:
        job = dataclasses.replace(job, reuse=mode == "reuse")  # type: ignore[call-arg]
    elif mode != "full":
        raise SystemExit(f"this checkout's refit has only the full mode, not {mode!r}")
    wall, cpu = time.perf_counter(), cpu_seconds(launch is not None)
    if launch is not None:
        running, wait = launch(job)
        with PeakWatch(running) as peak:
            outcome = wait()
        outcome["peak_rss_mb_polled"] = peak.mb
        if "error" in outcome:
            raise SystemExit(f"the refit failed: {outcome['error']}")
    else:
        outcome = run_refit(job, encoder)
    outcome["wall_s"] = round(time.perf_counter() - wall, 3)
    outcome["cpu_s"] = round(cpu_seconds(launch is not None) - cpu, 3)
    if "worker" in outcome:  # forked from the refit server: not this process's child
        outcome["cpu_s"] = round(outcome["worker"]["cpu_s"], 3)
    return outcome


class PeakWatch(threading.Thread):
    """Reads the refit process's peak resident memory (``VmHWM``) every 0.05 s while it runs,
    from outside (any checkout: a forked refit is the server's child, not this process's); the
    last reading is the peak but for its last 0.05 s."""

    def __init__(self, running: Any) -> None:
        super().__init__(daemon=True)
        self.running = running
        self.mb: float | None = None
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            pid = getattr(self.running, "pid", None)
            with contextlib.suppress(OSError, StopIteration, ValueError, TypeError):
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
                self.mb = int(next(x for x in lines if x.startswith("VmHWM")).split()[1]) / 1024

    def __enter__(self) -> PeakWatch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join()


def cpu_seconds(children: bool) -> float:
    """CPU seconds of this process, or of its ended children."""
    if not children:
        return time.process_time()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def refit_server() -> dict[str, Any]:
    """The refit server's pid, CPU seconds (its imports) and resident memory, where this
    checkout has one (:mod:`coldbrew.live.worker`)."""
    try:
        from coldbrew.live.worker import server_pid
    except ImportError:
        return {}
    pid = server_pid()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {"pid": pid}
    rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    ticks = os.sysconf("SC_CLK_TCK")
    return {"pid": pid, "cpu_s": (int(stat[11]) + int(stat[12])) / ticks, "rss_mb": rss / 1024}


def table(results: dict[str, Any]) -> str:
    """Markdown: each refit's total, steps and part fits, and its ratio to the plain ALS fit."""
    als = results["plain_als"]["wall_s"]
    lines = [
        f"plain ALS fit: {als:.3f} s wall (median of {len(results['plain_als']['wall_s_each'])})"
    ]
    for name, out in results["refits"].items():
        ratio = out["wall_s"] / als
        lines.append(
            f"\n{name}: {out['wall_s']:.2f} s wall, {out['cpu_s']:.2f} s CPU, {ratio:.0f}x ALS; "
            f"swapped {out.get('swapped')}, holdout {out['validation']}"
        )
        process = out.get("worker", {})
        lines.append(
            f"encoded {out.get('encoded')} with {out.get('encoder', '?')}; refit process peak "
            f"RSS {process.get('peak_rss_mb', '?')} MB (polled {out.get('peak_rss_mb_polled')}), "
            "encoder libraries "
            f"{process.get('imported', '?')}"
        )
        lines.append("| step | wall s | CPU s |\n|---|---:|---:|")
        for step, t in out.get("steps", {}).items():
            lines.append(f"| {step} | {t['wall_s']:.2f} | {t['cpu_s']:.2f} |")
        for model, parts in out.get("parts", {}).items():
            for part, t in parts.items():
                lines.append(f"| {model}: {part} | {t['wall_s']:.2f} | {t['cpu_s']:.2f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k", choices=sorted(LOADERS))
    parser.add_argument(
        "--new",
        type=int,
        default=300,
        help="events added before the 2nd refit (the newest; fewer if tied with older ones)",
    )
    parser.add_argument("--modes", default="full", help="comma-separated: full, reuse")
    parser.add_argument("--encoder", default="default")
    parser.add_argument(
        "--spawn", action="store_true", help="each refit where the service runs it (its launcher)"
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        help="the service's encoder runtime, which the refit encodes on (default: the job's, "
        "auto; checkouts before issue 29's refit runtime encode on PyTorch and refuse it)",
    )
    parser.add_argument("--als-repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache-dir", type=Path, default=Path(".coldbrew/cache"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "refit")
    parser.add_argument("--label", default="", help="added to the output file's name")
    parser.add_argument(
        "--state",
        type=Path,
        help="a folder keeping the store and the first refit's version: filled on the first "
        "run, read on the next ones (which skip the first refit and run only the second)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = [round(x, 2) for x in os.getloadavg()]
    head = git_head()  # the code measured: the run imports it now and takes long
    records = dataset_records(LOADERS[args.dataset](data_root()))
    events = sorted(
        (i for i in records.interactions if i.event in POSITIVE_EVENTS), key=lambda i: i.timestamp
    )
    new = newest(events, args.new)
    later = {i.interaction_id for i in new}
    old = [i for i in records.interactions if i.interaction_id not in later]
    encoder = make_encoder(args.encoder)
    results: dict[str, Any] = {"refits": {}}
    with tempfile.TemporaryDirectory() as scratch:
        url = str(Path(scratch) / "refit.sqlite")
        job = RefitJob(url, str(Path(scratch) / "models"), encoder.config(), serving=None)
        job = runtime_job(job, args.runtime)
        # the service's: its server starts now
        launch = service_launcher(job) if args.spawn else None
        if args.state is None or not (args.state / FIRST).exists():
            seed_store(url, dataclasses.replace(records, interactions=old), encoder, args.cache_dir)
        results["plain_als"] = plain_als(records, events, args.seed, args.als_repeats)
        if args.state is not None and (args.state / FIRST).exists():
            first = kept_state(args.state, Path(scratch))
        else:
            first = refit(job, encoder, "full", launch)
            store = Store(url)
            add_events(store, new)
            store.close()
            if args.state is not None:
                keep_state(Path(scratch), args.state, first)
        results["refits"]["first (no serving version)"] = first
        for mode in args.modes.split(","):
            job = dataclasses.replace(job, serving=first["version"])
            results["refits"][f"second, {mode} (+{len(new)} events)"] = refit(
                job, encoder, mode, launch
            )
    results["plain_als_after"] = plain_als(records, events, args.seed, args.als_repeats)
    results["refit_server"] = refit_server() if args.spawn else {}
    body = {
        "dataset": args.dataset,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "git": head,
        "refit_job_fields": sorted(JOB_FIELDS),
        "runtime": getattr(job, "runtime", "torch (the job carries none)"),
        "run_refit": inspect.getsourcefile(run_refit),
        "positives": len(events),
        "spawned": args.spawn,
        "load_average": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
        **results,
    }
    text = table(results)
    print(text)
    print(f"load average: start {load_start}, end {body['load_average']['end']}")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"refit-cost-{args.dataset}{'-' + args.label if args.label else ''}"
    (args.out / f"{stem}.json").write_text(json.dumps(stamped(body), indent=1, default=str) + "\n")
    (args.out / f"{stem}.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
