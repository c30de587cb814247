"""The served model: which one answers, its versions, refits and swaps.

At start the engine serves a saved model (``Serving.model`` is its directory), the latest good
version of the hybrid the service trains itself, or the language model alone over the current
catalogue (:data:`~coldbrew.live.state.BOOTSTRAP`). Refits run in the background
(:class:`~coldbrew.live.refitter.Refitter`); a committed version is swapped in under the write lock,
and replicas serve what another replica's refit published. A forget rewrites the served
version's files at once and forces a refit without the user.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from coldbrew.live.catalog import ItemTable
from coldbrew.live.records import (
    POSITIVE_EVENTS,
    dataset_from_records,
    item_text,
    service_profiles,
)
from coldbrew.live.refit import (
    RefitJob,
    build_zeroshot,
    load_catalog,
    load_version,
    reconcile,
    run_refit,
    save_catalog_keys,
)
from coldbrew.live.refitter import Refitter, launcher
from coldbrew.live.saved import load_saved
from coldbrew.live.state import BOOTSTRAP, Live
from coldbrew.live.worker import encoder_libraries
from coldbrew.models.base import Recommender
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text.language import MIN_GROUP, is_cjk


def load_model(live: Live) -> None:
    """Serve a saved model, the latest good version, or the language model alone; start the
    refitter when the service trains its own hybrid."""
    plan = live.serving
    current = live.versions.current() if plan.model == "hybrid" else None
    if plan.model not in ("hybrid", "zeroshot"):
        live.saved = saved = load_saved(plan.model, live.items.values(), live.encoder_name)
        model, live.info, live.fields = saved.model, saved.info, saved.fields
        seen = load_catalog(Path(plan.model)) or {
            i: live.items.text_keys[i] for i in model.item_ids if i in live.items
        }
        # its users are its own
        reconcile(model, live.items, seen, keys=live.items.text_keys, fields=live.fields)
        live.model = model
    elif current is not None:
        model, seen, live.info = load_version(live.versions, current, live.encoder)
        reconcile(model, live.items, seen, set(live.users), live.items.text_keys)
        live.model = model
    else:
        live.model = bootstrap(live)
    if plan.model == "hybrid":
        start_refitter(live)


def bootstrap(live: Live) -> Recommender | None:
    """The language model alone, over the current catalogue (none without items)."""
    if not live.items:
        return None
    users = [s.user for s in live.users.values()]
    held = np.dtype(live.index.vectors.dtype).name  # as compact as the index's rows
    model = build_zeroshot(live.encoder, held)
    rows = index_rows(live)
    if rows is not None:  # the rows the fit would hold: no million texts rendered and looked up
        spec, profiles = service_profiles(users)  # no frame: a restart imports no pandas
        model.fit_rows(spec, list(live.items), profiles, rows)
    else:
        model.fit(dataset_from_records(list(live.items.values()), users, []))
    share_vectors(live, model)
    return model


def index_rows(live: Live) -> Any | None:
    """The index's rows, where they are what a zero-shot fit over the catalogue would hold:
    the stored vectors of the items' texts (which the fit's encoder would look up one text at a
    time), in the catalogue's order, with nothing to centre by script; else ``None``. At a
    million items the fit's look-ups and frame took most of a replica's start and its
    transient peak."""
    if not one_script(live.items) or live.index.ids.ids() != list(live.items):
        return None
    return live.index.vectors


def one_script(items: ItemTable) -> bool:
    """Whether the items' texts hold fewer than :data:`~coldbrew.text.language.MIN_GROUP` CJK
    texts or fewer than that many others (a fit centres nothing by script then); only the
    records beyond ASCII are decoded."""
    cjk = sum(is_cjk(item_text(items[i])) for i in items.non_ascii())
    return min(cjk, len(items) - cjk) < MIN_GROUP


def share_vectors(live: Live, model: Recommender, item_ids: Sequence[str] | None = None) -> None:
    """Let a zero-shot model hold the index's rows rather than a copy when they are the
    same (``item_ids``: only those changed since it last shared them)."""
    if not isinstance(model, ZeroShotRecommender) or (item_ids and not live.shared):
        live.shared = False
        return
    rows = None if item_ids is None else model.item_ids.rows(item_ids)
    live.shared = model.share_item_vectors(live.index.vectors, rows, live.index.ids)


def start_refitter(live: Live) -> None:
    """Refit in the background as ``live.serving`` says."""
    plan = live.serving
    live.refitter = Refitter(
        partial(refit_job, live),
        partial(swap, live),
        every=plan.refit_every,
        minutes=plan.refit_minutes,
        min_interactions=plan.refit_min_interactions,
        # the refit server imports now on the replica that trains, not in its first refit
        launch=launcher(
            plan.ray,
            warm=live.fleet is None or live.fleet.is_trainer(),
            libraries=encoder_libraries(live.encoder.config(), live.runtime),
        ),
    )
    if live.fleet is not None:  # one replica trains for the fleet
        live.refitter.leader = live.fleet.is_trainer
    resume_refits(live)


def resume_refits(live: Live) -> None:
    """Count the positive events the served model has not learned, and refit if due (at
    start, and when this replica is elected the fleet's trainer)."""
    if live.refitter is None:
        return
    with live.lock.read():
        positives = [
            inter
            for state in live.users.values()
            for _, inter in state.interactions.values()
            if inter.event in POSITIVE_EVENTS
        ]
        unseen = sum(1 for i in positives if i.timestamp > live.info.trained_through)
        bootstrap = live.info.version == BOOTSTRAP
    live.refitter.positives, live.refitter.new_interactions = len(positives), 0
    if unseen and bootstrap:
        live.refitter.request(reason="start")  # data but no model yet
    elif unseen:
        live.refitter.added(0, unseen)


def refit_job(live: Live, forced: bool) -> RefitJob:
    """What a refit of the current state is told (``forced``: after a forget)."""
    serving = live.info.version if live.info.version in live.versions.versions() else None
    return RefitJob(
        db_url=live.store.url,
        models_dir=str(live.versions.root),
        encoder=live.encoder.config(),
        serving=serving,
        forced=forced,
        epoch=live.forgets,
        runtime=live.runtime,
    )


def swap(live: Live, outcome: dict[str, Any], job: RefitJob) -> None:
    """Serve a refit's new version (called by the refitter when one was committed)."""
    version = outcome.get("version")
    if not outcome.get("swapped") or version is None:
        return
    if job.epoch != live.forgets:  # a user was forgotten after the job read the database
        live.versions.prune({v for v in live.versions.versions() if v != version})
        raise RuntimeError("a user was forgotten during the refit; its model is discarded")
    model, seen, info = load_version(live.versions, version, live.encoder)
    live.versions.publish(version)  # replicas: in the database first, then served here
    with live.lock.write():
        reconcile(model, live.items, seen, set(live.users), live.items.text_keys)
        previous = live.info.version
        live.model, live.info = model, info
    # keep the previous version to roll back to, unless it holds a forgotten user's data
    live.versions.prune({version} if job.forced else {version, previous})


def refit_now(live: Live) -> dict[str, Any]:
    """Refit in this process and wait (the demo, scripts); returns the refit's outcome."""
    job = refit_job(live, False)
    outcome = run_refit(job, live.encoder.inner)
    swap(live, outcome, job)
    return outcome


def refit(live: Live, *, forced: bool = False) -> str:
    """Start a refit now (``admin``); returns started / queued / waiting / off, or
    requested (a replica that does not train asks the fleet's trainer)."""
    if live.refitter is None:
        return "off"
    if live.fleet is not None and not live.fleet.is_trainer():
        return live.fleet.ask_trainer(forced=forced)
    return live.refitter.request(forced=forced, reason="admin")


def serve_version(live: Live, version: str) -> None:
    """Serve a version another replica's refit published (its files are here already)."""
    if version == live.info.version:
        return
    model, seen, info = load_version(live.versions, version, live.encoder)
    with live.lock.write():
        reconcile(model, live.items, seen, set(live.users), live.items.text_keys)
        live.model, live.info = model, info


def rewrite_served(live: Live, *, share: bool) -> None:
    """Write the served version's files again from the served model, which has forgotten
    the user, and delete every other version: a forget reaches the files at once, not only
    once the forced refit is served (``share``: replicas, in the database too). Under the
    read lock: answers go on, writes wait for the files."""
    with live.lock.read():
        model, version = live.model, live.info.version
        if model is None or version not in live.versions.versions():
            return  # nothing saved: the language model before any refit, or --model's

        def write(path: Path) -> None:
            model.save(path, profiles=False)
            save_catalog_keys(path, live.items.text_keys)

        live.versions.replace(version, write, share=share)


def refit_without_them(live: Live) -> None:
    """After a forget: a refit that read the user is cancelled, and one without them is
    forced (it starts once the cancelled one has ended)."""
    if live.refitter is not None:
        live.refitter.cancel("a user was forgotten")
        live.refitter.request(forced=True, reason="forget-user")
