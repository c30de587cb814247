"""Cheaper refits (issue 29): a refit with a serving hybrid reuses its blend weights, fitting each
part once, until the data has grown enough to search them again; a forced refit never reuses.

Each test runs the refit job in this process (:func:`~coldbrew.live.refit.run_refit`, the job
the service's refit process runs) on a real SQLite store.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from servicekit import free_port

from coldbrew.live.engine import Engine, Serving
from coldbrew.live.judge import split_recent
from coldbrew.live.records import dataset_from_records
from coldbrew.live.refit import (
    REUSE_GROWTH,
    RefitJob,
    build_zeroshot,
    reusable,
    run_refit,
)
from coldbrew.models.base import Recommender, UserQuery
from coldbrew.models.cf import ALSRecommender
from coldbrew.models.heads import AttributeMapRecommender, CFMapRecommender
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.store import Interaction, Item, Store
from coldbrew.text import HashingEncoder
from coldbrew.text.remote import OpenAIEncoder, RemoteEncoderError

TOPICS = ("hiking boots trail", "gaming console mouse", "cooking skillet knife", "novel poetry")


def likes(users: range, per_user: int, start: int) -> list[Interaction]:
    """Each user likes ``per_user`` items of their topic (``u % 4``), timestamps from ``start``."""
    rng = np.random.default_rng(users.start)
    out = []
    for u in users:
        for n in rng.choice(12, per_user, replace=False):
            out.append(Interaction(f"e{start + len(out)}", f"u{u}", f"i{u % 4}-{n}", "like", 0.0))
    return [replace(e, timestamp=float(start + t)) for t, e in enumerate(out)]


FIRST = "v000001"
"""The version the module's first refit wrote (weights searched on all 320 events)."""


def open_engine(folder: Path) -> Engine:
    serving = Serving(models_dir=str(folder / "models"), refit_every=0, refit_minutes=0)
    return Engine(Store(str(folder / "shop.sqlite")), HashingEncoder(64), serving=serving).load()


def close(engine: Engine) -> None:
    engine.close()
    engine.store.close()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 items in 4 topics, 40 users with 8 likes each, and a first refit (no held-out events:
    fitted and searched once) that wrote :data:`FIRST`."""
    folder = tmp_path_factory.mktemp("shop")
    engine = open_engine(folder)
    engine.upsert_items(
        [Item(f"i{t}-{n}", f"{TOPICS[t]} {n}") for t in range(4) for n in range(12)]
    )
    engine.add_interactions(likes(range(40), 8, 0))
    outcome = run_refit(job_for(engine, serving=None, holdout=0), engine.encoder.inner)
    assert outcome["swapped"] and outcome["weights"] == "searched", outcome
    assert outcome["version"] == FIRST and engine.versions.info(FIRST).searched_on == 320
    engine.versions.publish(FIRST)  # served from here on: no start-up refit in the copies
    close(engine)
    return folder


@pytest.fixture
def engine(shop: Path, tmp_path: Path) -> Iterator[Engine]:
    """The shop on a private copy of its database and versions."""
    shutil.copytree(shop, tmp_path, dirs_exist_ok=True)
    engine = open_engine(tmp_path)
    yield engine
    close(engine)


def job_for(engine: Engine, **changes: Any) -> RefitJob:
    """A refit of ``engine``'s database with :data:`FIRST` serving (unless ``changes`` say)."""
    job = RefitJob(engine.store.url, str(engine.versions.root), engine.encoder.config(), FIRST)
    return replace(job, **changes)


def load(engine: Engine, version: str) -> Recommender:
    return Recommender.load(engine.versions.path(version), encoder=engine.encoder.inner)


def test_a_refit_on_a_little_more_data_keeps_the_serving_weights(engine: Engine) -> None:
    """Ten more users later, the refit fits each part once and serves the same weights (no
    held-out events here, so the candidate is served as fitted); its version remembers what
    the weights were searched on."""
    serving = load(engine, FIRST)
    assert isinstance(serving, HybridRecommender)
    engine.add_interactions(likes(range(40, 50), 8, 1000))
    outcome = run_refit(job_for(engine, holdout=0), engine.encoder.inner)
    assert outcome["weights"] == "reused" and outcome["swapped"], outcome
    assert "weights" not in outcome["parts"]["candidate"]  # no search ran
    refitted = load(engine, outcome["version"])
    assert isinstance(refitted, HybridRecommender)
    assert np.array_equal(refitted.weights, serving.weights)
    for name, part in refitted.parts.items():  # the chosen context weights came along too
        assert getattr(part, "context_weight", 0.0) == getattr(
            serving.parts[name], "context_weight", 0.0
        )
    assert engine.versions.info(outcome["version"]).searched_on == 320
    lm, cf_map = refitted.parts["lm"], refitted.parts["cf_map"]  # kept, not learned again
    assert isinstance(lm, AttributeMapRecommender) and isinstance(cf_map, CFMapRecommender)
    assert np.array_equal(lm.weights, serving.parts["lm"].weights)  # type: ignore[attr-defined]
    assert cf_map.alpha == serving.parts["cf_map"].alpha  # type: ignore[attr-defined]
    assert "u45" in refitted.known_users() and outcome["version"] != FIRST
    found = refitted.recommend(UserQuery(user_id="u45"), 5)
    liked = {e.item_id for e in engine.store.interactions("u45")}
    assert len(found.ids) == 5 and not liked & set(found.ids)


def test_with_reused_weights_the_judged_candidate_is_served(engine: Engine) -> None:
    """No second fit: the candidate that passed is served, and its version says it learned
    only the events it was fitted on, so the next refit holds out the rest again."""
    engine.add_interactions(likes(range(40, 50), 8, 1000))
    outcome = run_refit(job_for(engine), engine.encoder.inner)
    held = outcome["validation"]["holdout"]
    assert outcome["weights"] == "reused" and outcome["swapped"] and held == 80, outcome
    assert list(outcome["parts"]) == ["candidate"]  # nothing fitted after the judge
    info = engine.versions.info(outcome["version"])
    assert (info.interactions, info.trained_through) == (320, 319.0)  # the new 80 were held
    engine.add_interactions(likes(range(50, 52), 8, 2000))
    again = run_refit(job_for(engine), engine.encoder.inner)
    assert again["validation"]["holdout"] == 416 // 5, again  # not just the 16 newest


def test_a_refit_searches_again_once_the_data_has_grown(engine: Engine) -> None:
    engine.add_interactions(likes(range(40, 70), 8, 1000))  # 560 events: 1.75x
    outcome = run_refit(job_for(engine, holdout=0), engine.encoder.inner)
    assert outcome["weights"] == "searched" and "weights" in outcome["parts"]["candidate"]
    assert engine.versions.info(outcome["version"]).searched_on == 560


def test_a_forced_refit_searches_afresh_and_drops_the_forgotten_user(engine: Engine) -> None:
    """The serving weights were chosen on the forgotten user's events: a forced refit reuses
    nothing, and its model does not know them."""
    with engine.store.transaction() as session:  # what forget-user does to the database
        engine.store.forget_user(session, "u3")
    outcome = run_refit(job_for(engine, forced=True, holdout=0), engine.encoder.inner)
    assert outcome["swapped"] and outcome["weights"] == "searched", outcome
    assert "u3" not in load(engine, outcome["version"]).known_users()


def test_the_reuse_rule() -> None:
    job = RefitJob("sqlite://", "models", {}, serving="v000001")
    assert reusable(job, 100, int(100 * REUSE_GROWTH))
    assert not reusable(job, 100, int(100 * REUSE_GROWTH) + 1)
    assert not reusable(job, 0, 10)  # never searched (or not recorded)
    assert not reusable(replace(job, forced=True), 100, 100)
    assert not reusable(replace(job, reuse=False), 100, 100)


def test_reusing_weights_needs_the_same_parts(engine: Engine) -> None:
    fitted = load(engine, FIRST)
    assert isinstance(fitted, HybridRecommender)
    fewer = HybridRecommender({n: p for n, p in fitted.parts.items() if n != "lexical"})
    assert not fewer.same_blend(fitted) and fitted.same_blend(load(engine, FIRST))
    events = engine.store.interactions()
    dataset = dataset_from_records(engine.store.items(), engine.store.users(), events)
    with pytest.raises(ValueError, match="different blend"):
        fewer.fit_reusing(dataset, fitted)


def test_a_serving_model_of_other_parts_is_not_reused(engine: Engine) -> None:
    """When the serving version's weights were searched but its model is not a hybrid of the
    recipe's parts (an older recipe), the refit searches afresh, and says so: its version
    records the events it searched on now."""
    folder = engine.versions.path(FIRST)
    kept = {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()}
    events = engine.store.interactions()
    dataset = dataset_from_records(engine.store.items(), engine.store.users(), events)
    shutil.rmtree(folder)
    build_zeroshot(engine.encoder.inner).fit(dataset).save(folder, profiles=False)
    for name in ("served.json", "catalog.npz"):
        (folder / name).write_bytes(kept[name])
    engine.add_interactions(likes(range(40, 50), 8, 1000))
    outcome = run_refit(job_for(engine, holdout=0), engine.encoder.inner)
    assert outcome["swapped"] and outcome["weights"] == "searched", outcome
    assert "weights" in outcome["parts"]["candidate"]  # the search ran
    assert engine.versions.info(outcome["version"]).searched_on == 400


def test_every_unseen_event_is_held_out_up_to_the_limit() -> None:
    """298 events newer than the serving model, a limit of 500: all 298 judge the candidate
    (a negative slice start once held out only the newest 202)."""
    events = [
        Interaction(f"e{t}", f"u{t % 7}", f"i{t % 11}", "like", float(t)) for t in range(3000)
    ]
    train, held = split_recent(events, after=2701.0, limit=500)
    assert [e.timestamp for e in held] == [float(t) for t in range(2702, 3000)]
    assert len(train) == 2702
    _, few = split_recent(events, after=2701.0, limit=100)
    assert [e.timestamp for e in few] == [float(t) for t in range(2900, 3000)]


def test_an_als_started_from_a_previous_fit_stays_near_it(engine: Engine) -> None:
    """Started from its own factors on the same data plus ten users, a few sweeps leave the
    known items' factors where they were (cosine near 1) and give the new users rows."""
    previous = load(engine, FIRST)
    assert isinstance(previous, HybridRecommender)
    old = previous.parts["cf_f64"]
    assert isinstance(old, ALSRecommender)
    engine.add_interactions(likes(range(40, 50), 8, 1000))
    events = engine.store.interactions()
    dataset = dataset_from_records(engine.store.items(), engine.store.users(), events)
    started = ALSRecommender(factors=old.factors, regularization=old.regularization)
    started.start_from(old)
    started.fit(dataset)
    rows = old.item_ids.rows(list(started.item_ids))
    a, b = started.item_factors, old.item_factors[rows]
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.mean() > 0.95, cosine
    assert started.user_factors.shape == (50, old.factors) and "u45" in started.user_ids
    found = started.recommend(UserQuery(user_id="u45"), 5)
    assert len(found.ids) == 5 and found.ids[0].startswith("i1-")  # their topic


def test_a_refit_with_nothing_new_to_encode_never_loads_the_encoder(engine: Engine) -> None:
    """Every item's vector is stored and no held-out user brings words or attributes: the refit
    never asks its encoder for a vector, its size included. That encoder is an embeddings
    server that is not there (every use of it fails); once an item has no stored vector, the
    refit must use it, and fails. One item's description ends in " ." (52 ml-1m plots do):
    its text once rendered to itself minus the space, missed its stored vector and was
    encoded."""
    engine.upsert_items([Item("i0-dots", "hiking map", "drawn by hand, though .")])
    remote = OpenAIEncoder(f"http://127.0.0.1:{free_port()}/v1", "absent", retries=0)
    stored = engine.store.vectors("item", engine.encoder.name)
    with engine.store.transaction() as session:
        engine.store.register_model(session, remote.name, remote.config(), 64)
        vectors = np.stack(list(stored.values()))
        engine.store.put_vectors(session, "item", remote.name, list(stored), vectors)
    engine.add_interactions(likes(range(40, 50), 8, 1000))
    for serving in (FIRST, None):  # the serving version loaded, reused; a fresh search
        outcome = run_refit(job_for(engine, encoder=remote.config(), serving=serving))
        assert outcome["swapped"] and outcome["encoded"] == {"passage": 0, "query": 0}, outcome
    assert outcome["weights"] == "searched" and outcome["validation"]["holdout"] == 80
    engine.upsert_items([Item("i-new", "a tent for the trail")])  # its vector: hashing-64's only
    with pytest.raises(RemoteEncoderError, match=r"127\.0\.0\.1"):
        run_refit(job_for(engine, encoder=remote.config()))
