"""One query's answer remembered between a request's asks (:mod:`coldbrew.models.memo`), and
forgotten when the model it belongs to changes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from coldbrew.data.schema import Dataset
from coldbrew.models import UserQuery
from coldbrew.models.memo import LastQuery
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text import HashingEncoder


def test_last_query_computes_once_per_key_and_slot_read_only() -> None:
    memo, calls = LastQuery(), []

    def compute(value: float) -> np.ndarray:
        calls.append(value)
        return np.full(3, value)

    first = memo.get("a", lambda: compute(1.0))
    assert memo.get("a", lambda: compute(2.0)) is first and calls == [1.0]
    assert not first.flags.writeable
    other = memo.get("a", lambda: compute(3.0), slot="reference")  # slots apart
    assert memo.peek("a") is first and memo.peek("a", "reference") is other
    assert memo.get("b", lambda: compute(4.0))[0] == 4.0 and memo.peek("a") is None
    memo.forget()
    assert memo.peek("b") is None and memo.peek("a", "reference") is None


def test_a_remembered_user_vector_is_forgotten_when_a_liked_item_changes(
    tiny_dataset: Dataset,
) -> None:
    """The language model remembers one query's user vector; a liked item's new text (and
    the item's removal) make it computed again from the model as it is now."""
    model = ZeroShotRecommender(HashingEncoder(64)).fit(tiny_dataset)
    query = [UserQuery(liked=("tent",))]
    before = model.user_vectors(query)
    assert model.user_vectors(query) is before
    model.add_items(pd.DataFrame({"item_id": ["tent"], "title": ["A wool scarf"]}))
    after = model.user_vectors(query)
    assert not np.allclose(after, before)
    assert np.array_equal(after, model._user_vectors(query))
    model.remove_items(["boots"])
    assert model.user_vectors(query) is not after
