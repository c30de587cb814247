"""The engine's :class:`Serving` comes from the service's settings by one function."""

from __future__ import annotations

from pathlib import Path

import pytest

from coldbrew.config.settings import Settings
from coldbrew.live.serving import Serving


def test_the_engine_serves_what_the_environment_says(tmp_path: Path) -> None:
    env = {
        "COLDBREW_DB_URL": str(tmp_path / "shop.sqlite"),
        "COLDBREW_MODEL": "zeroshot",
        "COLDBREW_REFIT_MINUTES": "0",
        "COLDBREW_CANDIDATES": "64",
        "COLDBREW_SCORE_ALL_BELOW": "10",
    }
    serving = Settings.from_env(env).engine_serving()
    assert serving == Serving(
        model="zeroshot",
        models_dir=str(tmp_path / "shop.sqlite.models"),
        refit_minutes=0.0,
        candidates=64,
        score_all_below=10,
    )
    given = Settings.from_env(env, models_dir=str(tmp_path / "m")).engine_serving()
    assert given.models_dir == str(tmp_path / "m")


def test_serving_made_in_code_keeps_the_declared_rules() -> None:
    assert Serving() == Settings().serving
    with pytest.raises(ValueError, match="COLDBREW_WRITE_CHUNK=0: must be > 0"):
        Serving(write_chunk=0)
