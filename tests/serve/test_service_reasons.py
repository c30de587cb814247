"""Every kind of reason a model gives is worded as the service worded it before the models gave
typed reasons (issue 25): the sentences, the liked item cited and the words quoted, pinned."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servicekit import CATALOGUE, load_catalogue, make_settings

from coldbrew.live.answers import Recommendation
from coldbrew.live.engine import Engine
from coldbrew.live.explain import Explainer
from coldbrew.live.records import dataset_from_records
from coldbrew.models import Recommender, UserQuery, ZeroShotRecommender
from coldbrew.models.recipes import ModelContext, make_model
from coldbrew.models.sequence import TransitionRecommender
from coldbrew.serve import create_app
from coldbrew.store.records import Interaction, User
from coldbrew.text import HashingEncoder

IDS = [c["id"] for c in CATALOGUE]
USERS = [
    User(
        f"u{n}",
        text="I like the outdoors" if n % 2 else "",
        attributes={"age": "25-34" if n < 7 else "35-44", "country": "fr" if n % 3 else "de"},
    )
    for n in range(10)
]
EVENTS = [
    Interaction(
        f"e{n}_{j}",
        f"u{n}",
        IDS[(n + j * (1 + n % 3)) % len(IDS)],
        "like",
        float(n * 10 + j),
        context={
            "location": "France" if n % 2 else "Germany",
            "time": f"2011-06-0{1 + j}T09:30:00",
        },
    )
    for n in range(10)
    for j in range(4)
]
QUERIES: dict[str, tuple[UserQuery, UserQuery | None]] = {
    "text": (UserQuery(text="a lantern for my camping tent and hiking boots"), None),
    "liked": (UserQuery(liked=("boots",)), None),
    "liked3": (UserQuery(liked=("keyboard", "tent", "mouse")), None),
    "user, nothing quotable": (UserQuery(user_id="u3"), UserQuery()),
    "attributes": (UserQuery(attributes={"age": "25-34", "country": "fr"}), None),
    "context": (UserQuery(context={"location": "France", "time": "2011-06-04T09:30:00"}), None),
}
CONTEXT = ModelContext(lambda: HashingEncoder(256), None, 42)
MODELS: dict[str, Callable[[], Recommender]] = {
    **{
        name: lambda name=name: make_model(name, CONTEXT)
        for name in (
            "random",
            "attribute_popularity",
            "context_popularity",
            "itemknn",
            "tfidf",
            "zeroshot",
            "cf_map",
        )
    },
    "transitions": lambda: TransitionRecommender(window=5),
    "zeroshot, context": lambda: ZeroShotRecommender(HashingEncoder(256), context_weight=1.0),
}
BOOTS = ("boots", "Waterproof hiking boots")
# (model, query, item) -> (text, liked item cited with its closeness, words quoted)
PINNED: dict[tuple[str, str, str], tuple[str, list[Any], list[str]]] = {
    ("random", "text", "tent"): ("Popular with everyone right now.", [], []),
    ("attribute_popularity", "attributes", "mouse"): (
        "Popular with users who share your country: fr.",
        [],
        [],
    ),
    ("context_popularity", "context", "tent"): ("Popular on Saturdays in France.", [], []),
    ("context_popularity", "context", "mouse"): ("Popular in France.", [], []),
    ("itemknn", "liked", "jacket"): (
        "People who liked “Waterproof hiking boots” also liked this.",
        [(*BOOTS, 0.6124)],
        [],
    ),
    ("itemknn", "user, nothing quotable", "parka"): ("Close to what you liked before.", [], []),
    ("tfidf", "text", "skillet"): ("Worded like what you asked for.", [], []),
    ("tfidf", "liked", "tent"): (
        "Shares “hiking”, “category” with “Waterproof hiking boots”, which you liked.",
        [(*BOOTS, 0.3041)],
        [],
    ),
    ("zeroshot", "text", "tent"): (
        "Matches your words “camping”, “tent”, “hiking”.",
        [],
        ["camping", "tent", "hiking"],
    ),
    ("zeroshot", "text", "parka"): ("Close in meaning to what you wrote.", [], []),
    ("zeroshot", "liked", "tent"): (
        "Close in meaning to “Waterproof hiking boots”, which you liked.",
        [(*BOOTS, 0.3041)],
        [],
    ),
    ("zeroshot", "attributes", "parka"): ("Suits your profile (age: 25-34, country: fr).", [], []),
    ("cf_map", "liked", "boots"): (
        "Described like what people who liked “Waterproof hiking boots” went on to like.",
        [(*BOOTS, 1.0)],
        [],
    ),
    ("cf_map", "context", "jacket"): ("Suits your profile.", [], []),
    ("transitions", "liked", "mouse"): (
        "People who liked “Waterproof hiking boots” went on to like this.",
        [(*BOOTS, 0.4286)],
        [],
    ),
    ("transitions", "liked3", "cookbook"): (
        "People who liked “Wireless gaming mouse” went on to like this.",
        [("mouse", "Wireless gaming mouse", 0.5)],
        [],
    ),
    ("zeroshot, context", "context", "boots"): (
        "Close in meaning to your context: Saturday morning in summer, in France.",
        [],
        [],
    ),
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The service's engine over the test catalogue (on SQLite: the words do not depend on the
    database)."""
    url = str(tmp_path_factory.mktemp("reasons") / "coldbrew.sqlite")
    with TestClient(create_app(make_settings(url), encoder=HashingEncoder(256))) as client:
        load_catalogue(client)
        yield client.app.state.engine  # type: ignore[attr-defined]


def _explained(engine: Engine, model: Recommender, query: str) -> dict[str, Any]:
    """The service's explanation of each catalogue item ``model`` ranks for ``QUERIES[query]``."""
    asked, quotable = QUERIES[query]
    found = model.recommend(asked, k=len(IDS), exclude_seen=False)
    recs = [Recommendation(engine.items[i], float(s)) for i, s in zip(found.ids, found.scores)]
    Explainer(engine).explain(model, asked, recs, quotable)
    return {r.item.item_id: r.explanation for r in recs}


def test_each_kind_of_reason_is_worded_as_before(engine: Engine) -> None:
    data = dataset_from_records(list(engine.items.values()), USERS, EVENTS)
    fitted = {name: MODELS[name]().fit(data) for name in {m for m, _, _ in PINNED}}
    for (name, query, item_id), (text, liked, words) in PINNED.items():
        explanation = _explained(engine, fitted[name], query)[item_id]
        assert explanation is not None
        said = (explanation.text, explanation.liked, [w for w, _ in explanation.words])
        assert said == (text, liked, words), (name, query, item_id)


def test_nothing_quotable_means_nothing_cited(engine: Engine) -> None:
    """A known user whose profile may not be quoted: no liked item, word or attribute of theirs
    appears, whichever part decided (scored over all items or over the ranked ones only)."""
    data = dataset_from_records(list(engine.items.values()), USERS, EVENTS)
    model = make_model("hybrid", CONTEXT).fit(data)
    found = model.recommend(UserQuery(user_id="u3"), k=len(IDS), exclude_seen=False)
    for subset in (False, True):
        recs = [Recommendation(engine.items[i], float(s)) for i, s in zip(found.ids, found.scores)]
        Explainer(engine).explain(model, UserQuery(user_id="u3"), recs, UserQuery(), subset=subset)
        for rec in recs:
            assert rec.explanation is not None
            assert not rec.explanation.liked and not rec.explanation.words
            assert "25-34" not in rec.explanation.text and "“" not in rec.explanation.text
            assert set(rec.explanation.parts) == set(model.named_parts())
