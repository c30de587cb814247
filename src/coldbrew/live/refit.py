"""The service trains its own hybrid: the refit job, run in another process (its supervisor is
:mod:`~coldbrew.live.refitter`, its judge :mod:`~coldbrew.live.judge`).

A refit reads the database (catalogue, users, positive events and the stored item vectors, so it
encodes nothing the database already has), holds out the most recent positive events that the
serving model has not seen, fits a fresh hybrid (the benchmark's, :func:`build_hybrid`) on the
rest, and scores both models on the held-out events as the live service would have: for each
event, the user's history up to that moment ranks the whole catalogue, and NDCG@20 and hit@20 of
the event's item are recorded. When the candidate passes
(:func:`~coldbrew.live.judge.should_serve`, the rule in
docs/service.md) the same recipe is fitted again on every event, the held-out ones included,
and that model is written as the new version; a refit forced by forget-user is served
regardless, since the serving model learned from the forgotten user.

While the data has not grown much since the serving hybrid's weights were searched
(:func:`reusable`), the candidate keeps those weights and fits each part once
(:meth:`~coldbrew.models.hybrid.HybridRecommender.fit_reusing`), and a candidate that passes is
served as judged (:func:`_served`): no inner validation, no weight search, no second fit.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.live import worker
from coldbrew.live.collector import settled
from coldbrew.live.judge import (
    HOLDOUT,
    holdout_queries,
    judge,
    should_serve,
    split_recent,
    summary,
)
from coldbrew.live.lifeline import Lifeline, ParentGone
from coldbrew.live.records import POSITIVE_EVENTS, dataset_from_records, item_frame, item_text
from coldbrew.live.versions import ModelVersions, VersionInfo
from coldbrew.models.base import Recommender
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.recipes import ModelContext, make_model
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.stopwatch import Stopwatch
from coldbrew.store import Interaction, Item, User
from coldbrew.text.cache import text_key
from coldbrew.text.encoder import Encoder
from coldbrew.text.factory import OnFirstUse, rebuilt_on_use
from coldbrew.text.memo import MemoEncoder
from coldbrew.text.runtime import DEFAULT_RUNTIME

log = logging.getLogger("coldbrew.live.refit")
CATALOG = "catalog.npz"
Check = Callable[[str], None]
"""Called with the next step's name before each step of a refit; raises to stop it (a refit
process checks that its service is still there, :class:`~coldbrew.live.lifeline.Lifeline`)."""
REUSE_GROWTH = 1.5
"""A refit searches the blend's weights afresh once the positive events number more than this
many times those the serving weights were searched on; until then it reuses them
(:func:`reusable`)."""


def build_hybrid(encoder: Encoder, seed: int = 42, cache_dir: str | None = None) -> Recommender:
    """The hybrid exactly as ``coldbrew bench`` builds and measures it (``cache_dir``: the
    embedding cache for item texts)."""
    context = ModelContext(encoder=lambda: encoder, cache_dir=cache_dir, seed=seed)
    return make_model("hybrid", context)


def build_zeroshot(encoder: Encoder, vector_dtype: str = "float32") -> ZeroShotRecommender:
    """The language model alone: what the service answers with before it has learned
    (``vector_dtype``: ``float16`` holds its item vectors in half the memory)."""

    return ZeroShotRecommender(encoder, vector_dtype=vector_dtype)


# ---- a served model and the live catalogue ---------------------------------------------------
def save_catalog(path: Path, items: Sequence[Item]) -> None:
    """Which text each item had when the model saw it (to spot items changed since)."""
    save_catalog_keys(path, {i.item_id: text_key(item_text(i)) for i in items})


def save_catalog_keys(path: Path, keys: Mapping[str, str]) -> None:
    """:func:`save_catalog` from the items' text keys (item id -> key)."""
    np.savez(
        path / CATALOG,
        ids=np.asarray(list(keys), dtype=str),
        keys=np.asarray(list(keys.values()), dtype=str),
    )


def load_catalog(path: Path) -> dict[str, str]:
    file = path / CATALOG
    if not file.exists():
        return {}
    with np.load(file, allow_pickle=False) as data:
        return dict(zip(data["ids"].tolist(), data["keys"].tolist()))


def reconcile(
    model: Recommender,
    items: Mapping[str, Item],
    seen: Mapping[str, str],
    users: set[str] | None = None,
    keys: Mapping[str, str] | None = None,
    fields: Sequence[str] = (),
) -> None:
    """Bring ``model`` up to the live catalogue: items new or changed since ``seen`` (id -> text
    key the model read) are added, deleted ones removed; users no longer known (forgotten) are
    dropped from it when ``users`` is given. ``keys``: the items' current text keys, when the
    caller keeps them (else they are computed); ``fields``: item fields the model reads beyond
    the rendered text (:func:`~coldbrew.live.records.item_frame`)."""
    if keys is not None:  # read only the items whose text changed
        changed = [items[i] for i in keys if seen.get(i) != keys[i]]
    else:
        changed = [i for i in items.values() if seen.get(i.item_id) != text_key(item_text(i))]
    if changed:
        model.add_items(item_frame(changed, fields))
    gone = [i for i in model.active_item_ids() if i not in items]
    if gone:
        model.remove_items(gone)
    if users is not None:
        for user_id in [u for u in model.known_users() if u not in users]:
            model.forget_user(user_id)


def load_version(
    versions: ModelVersions, version: str, encoder: Encoder
) -> tuple[Recommender, dict[str, str], VersionInfo]:
    path = versions.path(version)
    model = Recommender.load(path, encoder=encoder)
    return model, load_catalog(path), versions.info(version)


# ---- the job (runs in a child process) -------------------------------------------------------
@dataclass(frozen=True)
class RefitJob:
    """Everything a refit needs, as plain values (it crosses a process boundary)."""

    db_url: str
    models_dir: str
    encoder: dict[str, Any]
    serving: str | None
    forced: bool = False
    epoch: int = 0
    holdout: int = HOLDOUT
    seed: int = 42
    reuse: bool = True
    """Reuse the serving version's blend weights when :func:`reusable` allows (``False``: fit
    and search everything afresh, as every refit did before issue 29)."""
    runtime: str = DEFAULT_RUNTIME
    """Where the refit's encoder runs: the service's runtime (``COLDBREW_ENCODER_RUNTIME``,
    :func:`~coldbrew.text.runtime.onnx_or_torch`). ``encoder`` alone would rebuild a float onnx
    encoder on PyTorch, since their configs are the same. Jobs are never stored: each is made
    for one refit and handed to its process (pickled) by the same code."""


def run_refit(
    job: RefitJob,
    encoder: Encoder | None = None,
    check: Check | None = None,
    *,
    frozen: bool = False,
) -> dict[str, Any]:
    """Fit, judge and (if it earns it) commit a new version; returns what happened.

    ``check`` is called before each step and right before and after the commit (a refit
    process passes its :meth:`~coldbrew.live.lifeline.Lifeline.check`: a refit whose service
    is gone stops, and leaves no version). BLAS runs on one thread meanwhile (``implicit``'s
    ALS is slower, and warns, with more). The outcome's ``steps`` holds each step's wall and
    CPU seconds, and ``parts`` those of each hybrid fit's parts and weight search. The
    database is read with the garbage collector paused; ``frozen`` (only in a process of its
    own that ends with the refit) then leaves what it read out of later collections
    (:func:`~coldbrew.live.collector.settled`).
    """
    from threadpoolctl import threadpool_limits

    clock = Stopwatch()
    checked = check or _go_on

    def step(name: str) -> None:
        checked(name)
        clock.lap(name)

    with threadpool_limits(1, "blas"):
        outcome = _refit(job, encoder, step, frozen)
    clock.lap(None)
    return {**outcome, "steps": clock.report()}


def _go_on(step: str) -> None:
    """The check of a refit that nothing can orphan (in the service's own process)."""


def _refit(
    job: RefitJob, encoder: Encoder | None, check: Check, frozen: bool = False
) -> dict[str, Any]:
    from coldbrew.store import Store

    start = time.perf_counter()
    check("reading the database")
    # on the service's runtime, one thread, loaded only if something must be encoded
    encoder = encoder or rebuilt_on_use(job.encoder, runtime=job.runtime, threads=1)
    store = Store(job.db_url)
    with settled(freeze=frozen):  # records without cycles: nothing for the collector to free
        try:
            items, users = store.items(), store.users()
            interactions = store.interactions()
            stored = store.vectors("item", encoder.name)
        finally:
            store.close()
        by_text = {item_text(i): stored[i.item_id] for i in items if i.item_id in stored}
        versions = ModelVersions(job.models_dir)
        serving_info = versions.info(job.serving) if job.serving else None
        after = serving_info.trained_through if serving_info else float("-inf")
        live = {i.item_id: i for i in items}
        positives = [i for i in interactions if i.event in POSITIVE_EVENTS and i.item_id in live]
        train, held = split_recent(positives, after, job.holdout)
        by_user = {u.user_id: u for u in users}
        holdout = holdout_queries(positives, held, by_user)
    size = len(next(iter(by_text.values()))) if by_text else None
    memo = MemoEncoder(encoder, by_text.get, dim=size)  # no model loaded unless it must encode
    check("loading the serving model")
    if job.serving:
        serving, seen, _ = load_version(versions, job.serving, memo)
        reconcile(serving, live, seen)
    else:
        serving = build_zeroshot(memo).fit(dataset_from_records(items, users, train))
    searched_before = serving_info.searched_on if serving_info else 0
    blend = serving if reusable(job, searched_before, len(positives)) else None
    check("fitting the candidate")
    candidate, reused = _fit(memo, job.seed, items, users, train, blend)
    blend = blend if reused else None  # a serving model of other parts: searched afresh
    check("judging the candidate")
    gains = {"candidate": judge(candidate, holdout), "serving": judge(serving, holdout)}
    scores = {name: summary(g) for name, g in gains.items()}
    swap = should_serve(gains["candidate"], gains["serving"], forced=job.forced)
    outcome: dict[str, Any] = {
        "swapped": swap,
        "forced": job.forced,
        "validation": {"holdout": len(holdout.queries), **scores},
        "interactions": len(positives),
        "weights": "searched" if blend is None else "reused",
    }
    final: Recommender | None = None
    if swap:
        check("fitting the served model")
        final, learned = _served(candidate, held, memo, job.seed, items, users, positives, blend)
        info = VersionInfo(
            version="",
            kind=final.kind,
            interactions=len(learned),
            trained_through=max((i.timestamp for i in learned), default=float("-inf")),
            seconds=time.perf_counter() - start,
            validation=outcome["validation"],
            forced=job.forced,
            searched_on=(len(positives) if blend is None else searched_before)
            if isinstance(final, HybridRecommender)
            else 0,
        )
        outcome["version"] = _write_version(versions, final, items, info, check)
    outcome["seconds"] = time.perf_counter() - start
    outcome["encoded"] = dict(memo.encoded)  # none: the encoder's model was never loaded
    outcome["encoder"] = encoded_with(encoder)
    outcome["parts"] = {
        name: model.fit_times.report()
        for name, model in (("candidate", candidate), ("served", final))
        if isinstance(model, HybridRecommender) and (name == "candidate" or model is not candidate)
    }
    return outcome


def _served(
    candidate: Recommender,
    held: Sequence[Interaction],
    encoder: Encoder,
    seed: int,
    items: Sequence[Item],
    users: Sequence[User],
    positives: Sequence[Interaction],
    blend: Recommender | None,
) -> tuple[Recommender, Sequence[Interaction]]:
    """The model to serve once the candidate has passed, and the events it learned from.

    With searched weights, the same recipe is fitted again on every event, the held-out ones
    included, so the served model learns from the freshest interactions too. With reused
    weights (``blend``) the candidate itself is served: its users' held-out likes reach it at
    query time (the service asks with each user's whole history: CF parts fold it in, item-item
    parts read it), and its version is trained only through the events it learned, so the next
    refit holds them out and learns them.
    """
    if not held:
        return candidate, positives
    if blend is not None:
        ids = {i.interaction_id for i in held}
        return candidate, [i for i in positives if i.interaction_id not in ids]
    return _fit(encoder, seed, items, users, positives)[0], positives


def _write_version(
    versions: ModelVersions,
    model: Recommender,
    items: Sequence[Item],
    info: VersionInfo,
    check: Check,
) -> str:
    """Save ``model`` as the next version, checking right before the commit (the rename) and
    right after it: a version committed as its service died is removed again."""
    check("saving the model")
    staged = versions.staging()
    try:
        model.save(staged, profiles=False)  # users' words stay in the database
        save_catalog(staged, items)
        version = versions.commit(staged, info, check=lambda: check("committing the version"))
    finally:
        shutil.rmtree(staged, ignore_errors=True)  # gone already once committed
    try:
        check("handing the version over")
    except BaseException:  # nobody will serve it: it must not stay
        versions.prune({v for v in versions.versions() if v != version})
        raise
    return version


def _fit(
    encoder: Encoder,
    seed: int,
    items: Sequence[Item],
    users: Sequence[User],
    events: Sequence[Interaction],
    blend: Recommender | None = None,
) -> tuple[Recommender, bool]:
    """The hybrid fitted on ``events`` (the language model alone while there is too little to
    learn from: fewer than two users or two items), and whether it reused ``blend``'s weights:
    with ``blend`` a hybrid of the same parts, its parts are fitted once and blended with
    ``blend``'s weights (:meth:`~coldbrew.models.hybrid.HybridRecommender.fit_reusing`);
    otherwise everything is fitted and searched."""
    learnable = len({i.user_id for i in events}) >= 2 and len({i.item_id for i in events}) >= 2
    model = build_hybrid(encoder, seed) if learnable else build_zeroshot(encoder)
    dataset = dataset_from_records(items, users, events)
    if isinstance(model, HybridRecommender) and blend is not None and model.same_blend(blend):
        return model.fit_reusing(dataset, blend), True
    return model.fit(dataset), False


def encoded_with(encoder: Encoder) -> str | None:
    """The class of the encoder a refit encoded with (``OnnxEncoder``,
    ``SentenceTransformerEncoder``...; a script-centred one's base), ``None`` when it was
    rebuilt on use and never used."""
    if isinstance(encoder, OnFirstUse):
        if encoder.made is None:
            return None
        encoder = encoder.made
    return type(getattr(encoder, "base", encoder) if _centred(encoder) else encoder).__name__


def _centred(encoder: Encoder) -> bool:
    return encoder.config().get("type") == "script-centred"


def reusable(job: RefitJob, searched_on: int, positives: int) -> bool:
    """Whether a refit may keep the serving version's blend weights (fitting each part once,
    searching nothing): asked to (``job.reuse``), not forced by a forget-user (the weights were
    chosen on the forgotten user's events), and the ``positives`` number at most
    :data:`REUSE_GROWTH` times the ``searched_on`` events the serving weights were searched on
    (0: not searched, or not recorded)."""
    if not job.reuse or job.forced or searched_on <= 0:
        return False
    return positives <= REUSE_GROWTH * searched_on


def run_quietly(
    job: RefitJob, check: Check | None = None, *, frozen: bool = False
) -> dict[str, Any]:
    """:func:`run_refit` at low priority with its encoder on one thread (in a child process or
    a Ray task: the refit must not slow the process that serves); ``frozen``: the process ends
    with the refit (:func:`run_refit`). PyTorch is imported only for an encoder on ``torch``."""
    with contextlib.suppress(OSError):
        os.nice(10)
    if check is not None:
        check("loading the libraries")
    if "torch" in worker.encoder_libraries(job.encoder, job.runtime):
        import torch

        torch.set_num_threads(1)
    return run_refit(job, check=check, frozen=frozen)


def peak_rss_mb() -> float | None:
    """This process's peak resident memory (``VmHWM``; pages shared with the server it was
    forked from included), ``None`` where ``/proc`` does not say."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(s for s in status if s.startswith("VmHWM")).split()[1]) / 1024
    return None


def refit_process(job: RefitJob, conn: Connection) -> None:
    """Entry point of the refit process: the result (or the error) goes through ``conn``. The
    process ends as soon as the service that started it is gone (:mod:`~.lifeline`). The
    outcome's ``worker`` says which process ran it, the refit libraries it started with
    (:func:`~coldbrew.live.worker.preloaded`: all of them when forked from the refit server),
    how many objects it holds outside the garbage collector's walks (the server's imports,
    :mod:`~coldbrew.live.preload`), its CPU seconds from its start, its peak resident memory
    and the encoders' libraries it held at its end (``imported``)."""
    lifeline = Lifeline.here()
    lifeline.watch()
    ready = worker.preloaded()
    try:
        outcome = run_quietly(job, lifeline.check, frozen=True)  # this process ends with it
        process = {
            "pid": os.getpid(),
            "parent": os.getppid(),
            "cpu_s": time.process_time(),
            "frozen": gc.get_freeze_count(),
            "peak_rss_mb": peak_rss_mb(),
            "imported": [m for m in worker.preloaded() if m not in worker.MODULES],
        }
        conn.send({**outcome, "worker": {**process, "preloaded": ready}})
    except ParentGone as exc:  # nobody to tell
        log.warning("%s", exc)
    except BaseException as exc:  # reported to the parent, which keeps serving
        with contextlib.suppress(OSError):
            conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()
