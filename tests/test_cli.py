"""The command line, end to end on the bundled sample and small folders (hashing encoder)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from coldbrew.cli.main import main
from coldbrew.data import SAMPLE_DIR


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "recommend", "eval"):
        assert command in out


def test_recommend_free_text_on_the_sample(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(
        capsys,
        "recommend", "--data", str(SAMPLE_DIR), "--encoder", "hashing",
        "--cache-dir", str(tmp_path), "--text", "lightweight spring jacket", "-k", "3", "--json",
    )  # fmt: skip
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 3
    assert rows[0]["title"] == "Lightweight spring jacket"
    assert rows[0]["score"] >= rows[1]["score"] >= rows[2]["score"]


def test_recommend_rejects_unknown_liked_items_without_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(
        capsys,
        "recommend", "--data", str(SAMPLE_DIR), "--encoder", "hashing",
        "--cache-dir", str(tmp_path), "--liked", "en-001,nope-9",
    )  # fmt: skip
    assert code == 2
    assert "nope-9" in err and "Traceback" not in err


def test_an_encoder_that_cannot_load_is_a_clear_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    # no network in the test, whatever the machine has: the hub answers nothing
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    code, _, err = run(
        capsys,
        "recommend", "--data", str(SAMPLE_DIR), "--encoder", "coldbrew-tests/no-such-model",
        "--model", "zeroshot", "--cache-dir", str(tmp_path), "--text", "a tent",
    )  # fmt: skip
    assert code == 2
    assert "Traceback" not in err
    assert "cannot load the encoder 'coldbrew-tests/no-such-model'" in err
    assert "'default'" in err and "'multilingual'" in err


def test_bad_rows_stop_the_command_or_are_skipped_on_request(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "shop"
    shutil.copytree(SAMPLE_DIR, folder)
    with (folder / "interactions.csv").open("a") as f:
        f.write("u1,no-such-item,5,1700009999\n")
    args = ["recommend", "--data", str(folder), "--encoder", "hashing", "--text", "jacket"]
    code, _, err = run(capsys, *args)
    assert code == 2
    assert "interactions.csv, line 241 [item_id]: unknown item id" in err  # the last line
    code, out, err = run(capsys, *args, "--skip-bad-rows")
    assert code == 0 and "skipped 1 bad rows" in err and out


def test_eval_writes_json_with_every_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_file = tmp_path / "eval.json"
    code, out, _ = run(
        capsys,
        "eval", "--data", str(SAMPLE_DIR), "--encoder", "hashing", "--cache-dir", str(tmp_path),
        "--out", str(out_file),
    )  # fmt: skip
    assert code == 0
    report = json.loads(out_file.read_text())
    text = json.dumps(report)
    for model in ("zeroshot", "popularity", "random"):
        assert model in out and model in text


def test_demo_runs_offline_on_the_sample(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(
        capsys, "demo", "--encoder", "hashing",
        "--db", str(tmp_path / "demo.sqlite"), "--no-serve",
    )  # fmt: skip
    assert code == 0
    assert "free text (Chinese)" in out and "attributes only" in out
    assert "new item" in out
