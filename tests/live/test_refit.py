"""A refit encodes on its service's runtime (issue 29): the job carries it, the refit server
imports that runtime's libraries and no other, and the refit builds its encoder on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coldbrew.live.engine import Engine, Serving
from coldbrew.live.served import refit_job
from coldbrew.live.worker import ENCODER_LIBRARIES, MODULES, encoder_libraries
from coldbrew.store import Store
from coldbrew.text.centred import ScriptCentredEncoder
from coldbrew.text.encoder import HashingEncoder
from coldbrew.text.factory import make_encoder
from coldbrew.text.runtime import RUNTIME_VARIABLE

ONNX, TORCH = ENCODER_LIBRARIES["onnx"], ENCODER_LIBRARIES["torch"]


def test_the_refit_job_carries_the_runtime_the_service_runs_its_encoder_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given (as ``coldbrew serve`` gives its setting), else ``$COLDBREW_ENCODER_RUNTIME``,
    else auto: the engine's runtime is the job's."""
    serving = Serving(models_dir=str(tmp_path / "models"), refit_every=0, refit_minutes=0)
    runtimes = []
    for name, given, variable in (
        ("a", "torch", "onnx"),
        ("b", None, "onnx-int8"),
        ("c", None, None),
    ):
        if variable is None:
            monkeypatch.delenv(RUNTIME_VARIABLE, raising=False)
        else:
            monkeypatch.setenv(RUNTIME_VARIABLE, variable)
        store = Store(str(tmp_path / f"{name}.sqlite"))
        engine = Engine(store, HashingEncoder(8), serving=serving, runtime=given).load()
        job = refit_job(engine, False)
        assert job.encoder == {"type": "hashing", "dim": 8}
        runtimes.append(job.runtime)
        engine.close()
        store.close()
    assert runtimes == ["torch", "onnx-int8", "auto"]


def test_the_refit_server_imports_the_libraries_of_the_runtime_the_encoder_runs_on() -> None:
    minilm = make_encoder("default").config()
    for runtime in ("auto", "onnx", "onnx-int8"):
        assert encoder_libraries(minilm, runtime) == ONNX
    assert encoder_libraries(minilm, "torch") == TORCH
    assert encoder_libraries({**minilm, "runtime": "onnx-int8"}, "torch") == ONNX  # int8's own
    centred = ScriptCentredEncoder(make_encoder("default"), [[0.0] * 384] * 2).config()
    assert encoder_libraries(centred, "auto") == ONNX
    assert encoder_libraries(centred, "torch") == TORCH
    assert encoder_libraries(HashingEncoder(8).config(), "torch") == ()


# A service's engine (MiniLM on the runtime $COLDBREW_ENCODER_RUNTIME names), five users with
# attributes (each refit encodes their profiles as queries) liking items; one forced refit in a
# process forked from the refit server; its outcome printed.
SCRIPT = """
import json, sys, time
from coldbrew.live.engine import Engine, Serving
from coldbrew.store import Interaction, Item, Store, User
from coldbrew.text.factory import runtime_encoder

root = sys.argv[1]
serving = Serving(models_dir=root + "/models", refit_every=0, refit_minutes=0)
engine = Engine(Store(root + "/s.sqlite"), runtime_encoder("default"), serving=serving).load()
words = ["trail boots", "camping tent", "gaming mouse", "cast iron skillet", "linen shirt"]
engine.upsert_items([Item(f"i{n}", f"{words[n % 5]} number {n}") for n in range(20)])
engine.upsert_users([User(f"u{u}", attributes={"age": str(20 + u)}) for u in range(5)])
likes = [(u, (u + 5 * k) % 20) for u in range(5) for k in range(4)]
engine.add_interactions(
    [Interaction(f"e{t}", f"u{u}", f"i{i}", "like", float(t)) for t, (u, i) in enumerate(likes)]
)
assert engine.refit(forced=True) == "started"
deadline = time.monotonic() + 300
while engine.refitter.running and time.monotonic() < deadline:
    time.sleep(0.2)
print(json.dumps({"runtime": engine.runtime, "outcome": engine.refitter.stats.last}))
engine.close()
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("runtime", "encoder", "libraries", "absent"),
    [
        ("auto", "OnnxEncoder", ONNX, ("torch", "sentence_transformers")),
        ("torch", "SentenceTransformerEncoder", TORCH, ("onnxruntime",)),  # tokenizers: both
    ],
)
def test_a_service_refit_encodes_on_the_services_runtime_and_imports_only_its_libraries(
    tmp_path: Path, runtime: str, encoder: str, libraries: tuple[str, ...], absent: tuple[str, ...]
) -> None:
    """In a fresh service process (its own refit server): on the default runtime the refit
    encodes the users' profiles with onnxruntime and PyTorch is never imported in it; on
    ``torch`` it encodes with PyTorch. Either way the server imported those libraries before
    the refit began."""
    env = {**os.environ, "COLDBREW_ENCODER_RUNTIME": runtime, "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    outcome = report["outcome"]
    assert report["runtime"] == runtime and outcome.get("swapped"), outcome
    assert outcome["encoded"]["query"] > 0 and outcome["encoder"] == encoder
    process = outcome["worker"]
    assert set(process["preloaded"]) >= {*MODULES, *libraries}  # before the job began
    assert not set(process["imported"]) & set(absent)  # at its end: not the other runtime's
    assert process["peak_rss_mb"] > 0
