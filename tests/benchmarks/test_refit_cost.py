"""``benchmarks/refit_cost.py``: the events it adds before the second refit are all later than
every event the first refit learned, so the refit holds out each of them (issue 29)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from coldbrew.live.judge import split_recent
from coldbrew.store import Interaction

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "refit_cost.py"


@pytest.fixture(scope="module")
def refit_cost() -> ModuleType:
    sys.path.insert(0, str(SCRIPT.parent))
    return importlib.import_module("refit_cost")


def _events(stamps: list[float]) -> list[Interaction]:
    return [Interaction(f"e{n}", f"u{n % 3}", f"i{n}", "like", t) for n, t in enumerate(stamps)]


def test_the_new_events_are_later_than_every_old_one(refit_cost: ModuleType) -> None:
    events = _events([1, 2, 3, 3, 3, 4, 5])
    new = refit_cost.newest(events, 3)
    assert [i.interaction_id for i in new] == ["e5", "e6"]  # e4 shares its second with e2, e3
    assert [i.interaction_id for i in refit_cost.newest(events, 2)] == ["e5", "e6"]
    assert refit_cost.newest(events, 9) == events


def test_the_refit_holds_out_every_new_event(refit_cost: ModuleType) -> None:
    """What the benchmark relies on: with the old events learned, each new one is held out,
    where the newest three by position would leave one, tied with an old event, learned."""
    events = _events([*range(1, 16), 16, 16, 16, 17, 18])
    for count in (1, 2, 3, 4):
        new = refit_cost.newest(events, count)
        old = events[: len(events) - len(new)]
        train, held = split_recent(events, max(i.timestamp for i in old))
        assert held == new and train == old
    assert len(refit_cost.newest(events, 3)) == 2
    by_position = events[-3:]
    learned = max(i.timestamp for i in events[:-3])
    assert split_recent(events, learned)[1] == by_position[1:]  # the tied one is not held out


def test_a_kept_state_comes_back_as_the_first_refit_left_it(
    refit_cost: ModuleType, tmp_path: Path
) -> None:
    """``--state``: the store and versions are copied back for each later run (each commits
    its own version into the copy), with the first refit's outcome."""
    scratch, state, again = tmp_path / "scratch", tmp_path / "state", tmp_path / "again"
    (scratch / "models" / "v1").mkdir(parents=True)
    (scratch / "refit.sqlite").write_bytes(b"the store")
    (scratch / "models" / "v1" / "model.json").write_text("{}")
    refit_cost.keep_state(scratch, state, {"version": "v1", "wall_s": 1.5})
    again.mkdir()
    assert refit_cost.kept_state(state, again) == {"version": "v1", "wall_s": 1.5}
    assert (again / "refit.sqlite").read_bytes() == b"the store"
    assert (again / "models" / "v1" / "model.json").read_text() == "{}"
    assert not (again / refit_cost.FIRST).exists()
    (again / "models" / "v2").mkdir()  # a later refit's version stays in its copy
    assert not (state / "models" / "v2").exists()


def test_the_job_runs_on_the_runtime_asked_else_its_default(refit_cost: ModuleType) -> None:
    job = refit_cost.RefitJob("sqlite://", "models", {"type": "hashing", "dim": 8}, None)
    assert refit_cost.runtime_job(job, None).runtime == "auto"
    assert refit_cost.runtime_job(job, "torch").runtime == "torch"


def test_the_peak_memory_of_a_running_process_is_read_from_outside(
    refit_cost: ModuleType,
) -> None:
    """What the benchmark reads of a refit process it did not start (any checkout's): here a
    child that holds 80 MB for a moment."""
    hold = "x = bytearray(80_000_000); import time; time.sleep(1.0)"
    child = subprocess.Popen([sys.executable, "-c", hold])
    with refit_cost.PeakWatch(child) as peak:
        child.wait()
    assert peak.mb is not None and peak.mb >= 80
