"""``live.collector.settled``: the collector paused while a refit reads, turned on again after
(or left off, if it was), and what was read moved out of its reach only when asked."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from coldbrew.live.collector import settled


@pytest.fixture
def thawed() -> Iterator[None]:
    """Undo this test's freeze (pytest's objects go back to the collector's generations)."""
    before = gc.get_freeze_count()
    yield
    if gc.get_freeze_count() != before:
        gc.unfreeze()


def test_paused_while_reading_and_on_again_after(thawed: None) -> None:
    assert gc.isenabled()
    with settled():
        assert not gc.isenabled()
        records = [[n] for n in range(1000)]
    assert gc.isenabled()
    assert all(gc.is_tracked(r) for r in records)


def test_left_off_when_it_was_off(thawed: None) -> None:
    gc.disable()
    try:
        with settled():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_on_again_and_nothing_frozen_after_an_error(thawed: None) -> None:
    before = gc.get_freeze_count()
    with pytest.raises(RuntimeError), settled(freeze=True):
        raise RuntimeError("the read failed")
    assert gc.isenabled()
    assert gc.get_freeze_count() == before


def test_what_was_read_is_frozen_only_when_asked(thawed: None) -> None:
    before = gc.get_freeze_count()
    with settled():
        kept = [[n] for n in range(5000)]
    assert gc.get_freeze_count() == before
    with settled(freeze=True):
        kept += [[n] for n in range(5000)]
    assert gc.get_freeze_count() >= before + len(kept)
    assert gc.isenabled()
