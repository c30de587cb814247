"""Smoke benchmark: the whole pipeline end to end on a tiny synthetic dataset, HashingEncoder."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from coldbrew.bench.report import markdown
from coldbrew.bench.runner import PROTOCOLS, BenchConfig, EncoderHolder, run_benchmark
from coldbrew.cli.main import main
from coldbrew.data import load_dataset
from coldbrew.data.schema import Dataset
from coldbrew.models import UserQuery
from coldbrew.models.hybrid import HybridRecommender
from coldbrew.models.innerval import NEXT_ITEM_STEPS
from coldbrew.models.recipes import LM_PARTS, MODEL_NAMES, ModelContext, make_model, parse_models
from coldbrew.models.zeroshot import ZeroShotRecommender
from coldbrew.text import HashingEncoder
from coldbrew.text.onnx import OnnxEncoder
from coldbrew.text.sbert import SentenceTransformerEncoder
from synthetic import write_synthetic


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return load_dataset(write_synthetic(tmp_path_factory.mktemp("data") / "synthetic"))


CONFIG = BenchConfig(
    encoder="hashing",
    k_values=(0, 1, 3),
    latency_users=5,
    bootstrap_resamples=200,
    show_progress=False,
)


def _numbers(rows: list[dict[str, object]]) -> list[tuple[str, str, object, str, float]]:
    return [
        (str(r["model"]), str(r["protocol"]), r["k"], name, value)
        for r in rows
        for name, value in dict(r["metrics"]).items()  # type: ignore[call-overload]
    ]


def test_pipeline_metrics_are_bounded_and_reproducible(synthetic: Dataset, tmp_path: Path) -> None:
    first = run_benchmark(synthetic, CONFIG, tmp_path / "a")
    second = run_benchmark(synthetic, CONFIG, tmp_path / "b")
    a = _numbers([r.to_dict() for r in first.rows])
    assert a == _numbers([r.to_dict() for r in second.rows])
    assert {m for m, *_ in a} == set(MODEL_NAMES)
    # cold-item, warm, warm-latest and next-item give one row per model, cold-user one per k
    assert len(first.rows) == len(MODEL_NAMES) * (1 + 3 + 1 + 1 + 1)
    for *_, value in a:
        assert 0.0 <= value <= 1.0
    for row in first.rows:
        low, high = row.ndcg20_ci95
        assert low <= row.metrics["ndcg@20"] <= high
        assert row.users > 0 and row.fit_seconds >= 0 and row.peak_rss_mb > 0
    by = {(r.model, r.protocol, r.k): r for r in first.rows}
    # the planted structure is found: text beats random on cold items, CF falls back visibly
    assert (
        by["tfidf", "cold-item", None].metrics["ndcg@20"]
        > by["random", "cold-item", None].metrics["ndcg@20"]
    )
    assert (
        by["als", "cold-item", None].candidates_without_signal
        == by["als", "cold-item", None].candidates
    )
    assert by["als", "cold-user", 0].fallback_users == by["als", "cold-user", 0].users
    assert by["als", "cold-user", 3].fallback_users == 0
    assert by["zeroshot", "cold-user", 0].encode_texts_per_s is not None
    # the hybrid shows the weights its test users get and what its validation saw
    hybrid = by["hybrid", "cold-user", 3]
    assert hybrid.blend and sum(g["test_users"] for g in hybrid.blend) == hybrid.users
    assert all(abs(sum(g["weights"].values()) - 1) < 1e-3 for g in hybrid.blend)
    assert {g["users"] for g in hybrid.blend} == {"new, 3+ liked"}
    assert by["tfidf", "cold-user", 3].blend is None
    meta = {
        "dataset": "synthetic", "summary": "s", "seed": 42, "encoder": "hashing", "date": "d",
        "machine": {"cpu_count": 2, "processor": "x"}, "command": "c",
    }  # fmt: skip
    assert "| hybrid | new, 3+ liked |" in markdown(meta, first.splits, first.rows)


def test_splits_are_saved_and_reused(synthetic: Dataset, tmp_path: Path) -> None:
    config = BenchConfig(
        models=("popularity",), encoder="hashing", k_values=(0, 1), show_progress=False
    )
    run_benchmark(synthetic, config, tmp_path)
    files = sorted((tmp_path / "splits").glob("*/*.parquet"))
    assert len(files) == 15  # train, val, test for each of the five protocols
    stamps = [f.stat().st_mtime_ns for f in files]
    run_benchmark(synthetic, config, tmp_path)
    assert [f.stat().st_mtime_ns for f in files] == stamps
    changed = BenchConfig(models=("popularity",), encoder="hashing", k_values=(0, 2))
    run_benchmark(synthetic, changed, tmp_path)  # other k values: the cold-user split is remade
    meta = json.loads((tmp_path / "splits" / "cold-user-seed42" / "split.json").read_text())
    assert meta["info"]["k_values"] == [0, 2]


def test_all_protocols_skip_warm_latest_on_data_without_timestamps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_synthetic(tmp_path / "synthetic")
    toml = data / "dataset.toml"
    toml.write_text(toml.read_text().replace('timestamp = "timestamp"\n', ""))
    out = tmp_path / "out"
    argv = ["bench", "--data", str(data), "--encoder", "hashing", "--models", "popularity"]
    argv += ["--k-values", "0", "--out", str(out), "--no-progress", "--cache-dir", ""]
    assert main(argv) == 0
    report = json.loads((out / "results.json").read_text())
    assert {r["protocol"] for r in report["results"]} == {"cold-item", "cold-user", "warm"}
    assert "no timestamps: skipping warm-latest" in capsys.readouterr().err
    assert main([*argv, "--protocol", "warm-latest"]) != 0  # asked for by name: a clear error
    assert "the warm-latest protocol needs timestamps" in capsys.readouterr().err
    assert main([*argv, "--protocol", "next-item"]) != 0
    assert "the next-item protocol needs timestamps" in capsys.readouterr().err


def test_next_item_runs_end_to_end_with_recall_and_ndcg_at_10_intervals(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "synthetic")
    out = tmp_path / "out"
    argv = ["bench", "--data", str(data), "--encoder", "hashing", "--models", "popularity,itemknn"]
    argv += ["--protocol", "next-item", "--out", str(out), "--no-progress", "--cache-dir", ""]
    assert main(argv) == 0
    report = json.loads((out / "results.json").read_text())
    split = report["splits"]["next-item"]
    assert split["test_users"] + split["train_only_users"] == 50 and split["test_users"] > 40
    rows = {r["model"]: r for r in report["results"]}
    assert set(rows) == {"popularity", "itemknn"}
    for row in rows.values():
        assert row["protocol"] == "next-item" and row["users"] == split["test_users"]
        assert row["candidates"] == 80  # the whole catalogue
        assert set(row["intervals"]) == {"recall@10", "ndcg@10"}
        for metric, (low, high) in row["intervals"].items():
            assert low <= row["metrics"][metric] <= high
    # each user's items share a topic: neighbours of the history beat the global ranking
    assert rows["itemknn"]["metrics"]["recall@10"] > rows["popularity"]["metrics"]["recall@10"]
    text = (out / "results.md").read_text()
    assert "### next-item" in text and "Recall@10 95% CI" in text
    assert "the whole earlier history revealed" in text


def test_cli_writes_json_markdown_and_plots(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "synthetic")
    out = tmp_path / "out"
    argv = [
        "bench",
        "--data",
        str(data),
        "--encoder",
        "hashing",
        "--models",
        "popularity,tfidf,als",
    ]
    argv += ["--k-values", "0,1", "--out", str(out), "--no-progress", "--cache-dir", ""]
    assert main(argv) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["meta"]["dataset"] == "synthetic" and report["meta"]["seed"] == 42
    assert report["meta"]["libraries"]["numpy"] == np.__version__
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    if head.returncode == 0:  # run from a checkout (CI's is one): the report names its commit
        assert report["meta"]["source"]["commit"] == head.stdout.strip()
        assert report["meta"]["source"]["commit"][:12] in (out / "results.md").read_text()
    block = report["meta"]["provenance"]
    assert (
        block["command"] == report["meta"]["command"] and len(block["load_average"]["start"]) == 3
    )
    assert {r["protocol"] for r in report["results"]} == set(PROTOCOLS)
    assert all(r["params"] is not None for r in report["results"])
    text = (out / "results.md").read_text()
    assert "### cold-user" in text and "| tfidf |" in text
    for png in ("cold_to_warm.png", "bars.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_cli_rejects_unknown_models_and_bad_k(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown models"):
        parse_models("als,nope")
    data = write_synthetic(tmp_path / "synthetic")
    assert main(["bench", "--data", str(data), "--k-values", "1,x", "--out", str(tmp_path)]) == 2


def test_markdown_marks_empty_k_and_fallbacks(synthetic: Dataset) -> None:
    config = BenchConfig(
        protocols=("cold-user",), models=("als",), encoder="hashing", k_values=(0, 99)
    )
    run = run_benchmark(synthetic, config)
    rows = {r.k: r for r in run.rows}
    assert rows[99].users == 0 and rows[99].left_out_users > 0
    assert math.isnan(rows[99].ndcg20_ci95[0])
    meta = {
        "dataset": "synthetic", "summary": "s", "seed": 42, "encoder": "hashing", "date": "d",
        "machine": {"cpu_count": 2, "processor": "x"}, "command": "c",
    }  # fmt: skip
    text = markdown(meta, run.splits, run.rows)
    assert "0 (" in text  # users (left out) at k=99
    assert f"{rows[0].fallback_users}/{rows[0].users} users" in text


def test_append_reruns_some_models_and_keeps_the_others(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "synthetic")
    out = tmp_path / "out"
    base = ["bench", "--data", str(data), "--encoder", "hashing", "--k-values", "0,1"]
    base += ["--out", str(out), "--no-progress", "--cache-dir", "", "--protocol", "warm"]
    assert main([*base, "--models", "popularity,als"]) == 0
    before = json.loads((out / "results.json").read_text())["results"]
    assert main([*base, "--models", "als,tfidf", "--append"]) == 0
    report = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in report["results"]] == ["popularity", "als", "tfidf"]
    assert report["results"][0] == before[0]  # popularity kept as it was
    assert report["results"][1]["metrics"] == before[1]["metrics"]  # als rerun, same seed
    assert len(report["meta"]["commands"]) == 2
    assert (out / "results.md").read_text().count("Command:") == 2


def test_hybrid_no_lm_is_the_default_hybrid_less_its_language_model(synthetic: Dataset) -> None:
    """Issue 24's ablation: the default's parts and settings, minus ``lm`` and ``cf_map``."""
    ctx = ModelContext(lambda: HashingEncoder(64), None, seed=42)
    default, ablated = make_model("hybrid", ctx), make_model("hybrid_no_lm", ctx).fit(synthetic)
    assert isinstance(default, HybridRecommender) and isinstance(ablated, HybridRecommender)
    assert set(LM_PARTS) <= set(default.parts)
    assert list(ablated.parts) == [n for n in default.parts if n not in LM_PARTS]
    assert not any(isinstance(p, ZeroShotRecommender) for p in ablated.parts.values())
    settings = {k: v for k, v in default.get_params().items() if k != "parts"}
    assert {k: v for k, v in ablated.get_params().items() if k != "parts"} == settings
    recs = ablated.recommend(UserQuery(liked=("i0", "i2")), k=5)
    assert len(recs) == 5 and not {"i0", "i2"} & set(recs.ids)
    assert "hybrid_no_lm" not in MODEL_NAMES and parse_models("hybrid_no_lm") == ["hybrid_no_lm"]


def test_the_opt_in_next_item_hybrids_are_the_default_asking_fewer_queries() -> None:
    """Issue 24: the default's inner validation asks each time-ordered returning user for their
    latest NEXT_ITEM_STEPS likes as next-item queries; the opt-in ``hybrid_next_latest`` (the
    default until b68220e) asks for the latest alone, ``hybrid_without_next_item`` (the
    default before issue 24 item 3) for none. Same parts and settings but that one (a saved
    setting: it is among the parameters)."""
    ctx = ModelContext(lambda: HashingEncoder(64), None, seed=42)
    default = make_model("hybrid", ctx)
    assert isinstance(default, HybridRecommender)
    settings = {k: v for k, v in default.get_params().items() if k != "parts"}
    assert settings["next_item_queries"] == NEXT_ITEM_STEPS == 3
    for name, asked in (("hybrid_next_latest", 1), ("hybrid_without_next_item", False)):
        other = make_model(name, ctx)
        assert isinstance(other, HybridRecommender) and list(other.parts) == list(default.parts)
        assert {k: v for k, v in other.get_params().items() if k != "parts"} == {
            **settings,
            "next_item_queries": asked,
        }, name
        assert name not in MODEL_NAMES and parse_models(name) == [name]
    assert "transitions" not in MODEL_NAMES and parse_models("transitions") == ["transitions"]


def test_the_bench_encoder_holder_keeps_the_hashing_encoder_on_every_runtime() -> None:
    assert BenchConfig().runtime == "auto"  # as serve and recommend run it
    for runtime in ("auto", "torch", "onnx-int8"):
        holder = EncoderHolder("hashing:16", ["a jacket", "boots"], runtime=runtime)
        assert isinstance(holder.get(), HashingEncoder) and holder.texts_per_s


@pytest.mark.slow
def test_the_bench_encodes_in_onnxruntime_by_default_and_in_pytorch_when_asked() -> None:
    texts = ["a light jacket", "waterproof hiking boots"]
    onnx = EncoderHolder("default", texts, device="cpu").get()
    torch = EncoderHolder("default", texts, device="cpu", runtime="torch").get()
    assert isinstance(onnx, OnnxEncoder) and isinstance(torch, SentenceTransformerEncoder)
    assert onnx.name == torch.name  # one embedding cache for both
    np.testing.assert_allclose(onnx.encode(texts), torch.encode(texts), atol=2e-5)
