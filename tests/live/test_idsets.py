"""A frozen id set has the members a plain set would after any mix of adds and removes."""

from __future__ import annotations

import numpy as np

from coldbrew.live.idsets import IdSet


def test_same_members_as_a_set_before_and_after_freezing() -> None:
    rng = np.random.default_rng(1)
    ids, plain = IdSet(), set()
    for step in range(6000):
        item = f"i{int(rng.integers(300))}"
        if rng.random() < 0.6:
            ids.add(item)
            plain.add(item)
        else:
            ids.discard(item)
            plain.discard(item)
        if step in (2000, 4000):
            ids.freeze()
            assert ids._recent is None and ids._gone is None
        if step % 250 == 0:
            assert set(ids) == plain and len(ids) == len(plain)
            assert all((f"i{n}" in ids) == (f"i{n}" in plain) for n in range(300))
    assert sorted(ids) == sorted(plain) and len(list(ids)) == len(plain)
    assert 3 not in ids


def test_freeze_keeps_members_sorted_once_and_changes_apart() -> None:
    ids = IdSet(["b", "a", "c"])
    ids.freeze()
    assert ids._frozen == ("a", "b", "c")
    ids.discard("b")
    ids.add("d")
    ids.add("a")  # already a member: nothing changes
    assert ids._gone == {"b"} and ids._recent == {"d"}
    assert list(ids) == ["a", "c", "d"] and len(ids) == 3
    ids.add("b")  # back again: no longer removed, not added twice
    assert list(ids) == ["a", "b", "c", "d"] and not ids._gone
    assert repr(ids) == "IdSet(['a', 'b', 'c', 'd'])"
