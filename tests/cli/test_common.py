"""``--runtime``: every command that encodes takes serve's runtime setting, resolved as serve
resolves it (hashing encoder, and the bundled MiniLM where it must be)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from coldbrew.cli.common import encoder_from_args
from coldbrew.cli.main import build_parser, main
from coldbrew.data import SAMPLE_DIR
from coldbrew.text.encoder import HashingEncoder
from coldbrew.text.onnx import OnnxEncoder
from coldbrew.text.runtime import RUNTIME_VARIABLE
from coldbrew.text.sbert import SentenceTransformerEncoder

ENCODING = ("recommend", "eval", "bench", "encode")
"""The commands that encode with ``--encoder`` (serve has its own ``--runtime``)."""


def parsed(command: str, *argv: str) -> object:
    return build_parser(command).parse_args([command, "--data", str(SAMPLE_DIR), *argv])


@pytest.mark.parametrize("command", ENCODING)
def test_every_encoding_command_takes_the_runtime_and_refuses_an_unknown_one(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(RUNTIME_VARIABLE, raising=False)
    assert parsed(command).runtime is None  # type: ignore[attr-defined]
    assert parsed(command, "--runtime", "onnx-int8").runtime == "onnx-int8"  # type: ignore[attr-defined]
    with pytest.raises(SystemExit) as info:
        parsed(command, "--runtime", "gpu")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --runtime: invalid choice: 'gpu'" in err
    assert "auto" in err and "onnx-int8" in err and "torch" in err


def test_torch_the_setting_and_the_device_choose_pytorch_and_hashing_is_untouched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(RUNTIME_VARIABLE, raising=False)
    torch = encoder_from_args(parsed("recommend", "--encoder", "default", "--runtime", "torch"))
    assert isinstance(torch, SentenceTransformerEncoder) and torch._st is None
    gpu = encoder_from_args(parsed("encode", "--encoder", "default", "--device", "cuda"))
    assert isinstance(gpu, SentenceTransformerEncoder) and gpu.device == "cuda"
    for runtime in ("auto", "torch", "onnx-int8"):
        hashing = encoder_from_args(
            parsed("recommend", "--encoder", "hashing", "--runtime", runtime)
        )
        assert isinstance(hashing, HashingEncoder)
    monkeypatch.setenv(RUNTIME_VARIABLE, "torch")
    assert isinstance(
        encoder_from_args(parsed("eval", "--encoder", "default")), SentenceTransformerEncoder
    )
    monkeypatch.setenv(RUNTIME_VARIABLE, "onnx")  # the flag wins over the setting
    flagged = encoder_from_args(parsed("bench", "--encoder", "default", "--runtime", "torch"))
    assert isinstance(flagged, SentenceTransformerEncoder)


def test_a_bad_runtime_setting_is_a_one_line_error_naming_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(RUNTIME_VARIABLE, "gpu")
    code = main(["recommend", "--data", str(SAMPLE_DIR), "--encoder", "hashing",
                 "--cache-dir", str(tmp_path), "--text", "a jacket"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"{RUNTIME_VARIABLE}='gpu': choose one of auto, onnx, onnx-int8, torch" in err


def test_the_bench_report_records_the_runtime_it_ran(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(RUNTIME_VARIABLE, raising=False)
    runs = {}
    for runtime in ((), ("--runtime", "torch")):
        out = tmp_path / (runtime[-1] if runtime else "default")
        argv = ["bench", "--data", str(SAMPLE_DIR), "--encoder", "hashing", "--protocol",
                "cold-item", "--models", "tfidf", "--no-progress", "--latency-users", "1",
                "--cache-dir", "", "--out", str(out), *runtime]  # fmt: skip
        assert main(argv) == 0
        runs[out.name] = json.loads((out / "results.json").read_text())
    capsys.readouterr()
    assert runs["default"]["meta"]["config"]["runtime"] == "auto"
    assert runs["torch"]["meta"]["config"]["runtime"] == "torch"


def _recommend_in_a_child(cache: Path, *runtime: str) -> tuple[list[str], bool]:
    """``coldbrew recommend`` with the bundled MiniLM in a fresh process: the items it gave and
    whether PyTorch was imported."""
    argv = ["recommend", "--data", str(SAMPLE_DIR), "--encoder", "default", "--model", "zeroshot",
            "--cache-dir", str(cache), "--text", "a warm winter jacket", "-k", "5", "--json",
            *runtime]  # fmt: skip
    code = (
        "import sys; from coldbrew.cli.main import main; "
        f"assert main({argv!r}) == 0; print('torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    *rows, imported = done.stdout.strip().splitlines()
    return [row["item_id"] for row in json.loads("\n".join(rows))], imported == "True"


@pytest.mark.slow
def test_recommend_encodes_in_onnxruntime_by_default_and_in_pytorch_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default imports no PyTorch at all, as the service; both give the same items (each
    encodes the catalogue itself, into its own cache)."""
    monkeypatch.delenv(RUNTIME_VARIABLE, raising=False)
    onnx_items, onnx_imported_torch = _recommend_in_a_child(tmp_path / "onnx")
    torch_items, torch_imported_torch = _recommend_in_a_child(
        tmp_path / "torch", "--runtime", "torch"
    )
    assert (onnx_imported_torch, torch_imported_torch) == (False, True)
    assert onnx_items == torch_items and len(onnx_items) == 5
    assert isinstance(encoder_from_args(parsed("recommend", "--encoder", "default")), OnnxEncoder)
