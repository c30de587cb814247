"""Fine-tuning: pairs, loss, a tiny real run that learns a planted structure, artifacts, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coldbrew.bench.evaluate import evaluate
from coldbrew.cli.main import main
from coldbrew.data.schema import Dataset, DatasetSpec
from coldbrew.eval.protocols import cold_user_split
from coldbrew.models import RandomRecommender, Recommender, UserQuery, ZeroShotRecommender
from coldbrew.text import HashingEncoder
from coldbrew.text.templates import ItemTemplate
from coldbrew.train import TrainConfig, build_pairs
from coldbrew.train.options import DaptOptions, Distillation, Validation
from coldbrew.train.pairs import augment_parts
from planted import GROUPS, group_precision, planted, planted_split, tiny_config
from topics import two_topics

# one made-up team word per group: at k=0 a cold user's team is all there is to go on
TEAMS = ["orlish", "pemvaro", "sklundy", "trevikko"]


def planted_users() -> Dataset:
    """The planted groups with five users each, who like all three group items in random order
    and have their group's team as their only attribute."""
    base = planted()
    rng = np.random.default_rng(0)
    inter, users = [], []
    for g, titles in enumerate(GROUPS):
        for u in range(5):
            order = rng.permutation(len(titles))
            inter += [(f"g{g}u{u}", f"g{g}i{i}", 5.0, float(t)) for t, i in enumerate(order)]
            users.append((f"g{g}u{u}", TEAMS[g]))
    return Dataset(
        DatasetSpec("planted-users", user_attributes=("team",), positive_threshold=4.0),
        base.items,
        pd.DataFrame(inter, columns=["user_id", "item_id", "value", "timestamp"]),
        pd.DataFrame(users, columns=["user_id", "team"]),
    )


def write_folder(data: Dataset, folder: Path) -> Path:
    """``data`` as a dataset folder that ``coldbrew --data`` reads."""
    folder.mkdir(parents=True)
    data.items[["item_id", "title"]].to_csv(folder / "items.csv", index=False)
    data.users[["user_id", "team"]].to_csv(folder / "users.csv", index=False)
    data.interactions[["user_id", "item_id", "value", "timestamp"]].to_csv(
        folder / "interactions.csv", index=False
    )
    (folder / "dataset.toml").write_text(
        'name = "planted-users"\n\n[items]\nfile = "items.csv"\nid = "item_id"\n'
        'text = ["title"]\n\n[users]\nfile = "users.csv"\nid = "user_id"\n'
        'attributes = ["team"]\n\n[interactions]\nfile = "interactions.csv"\n'
        'user = "user_id"\nitem = "item_id"\nvalue = "value"\ntimestamp = "timestamp"\n'
        "positive_threshold = 4\n"
    )
    return folder


def test_config_checks_values_and_reads_toml(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="method"):
        TrainConfig(method="qlora")
    with pytest.raises(ValueError, match="unknown training options"):
        TrainConfig.from_dict({"max_stepz": 3})
    with pytest.raises(ValueError, match="rerank_depth must be at least 1"):
        Distillation(rerank_depth=0)
    with pytest.raises(ValueError, match="kl or margin-mse"):
        TrainConfig.from_dict({"distill_loss": "mse"})
    with pytest.raises(ValueError, match="teacher_batch_size"):
        Distillation(teacher_batch_size=1)
    (tmp_path / "t.toml").write_text("[train]\nmax_steps = 7\nmethod = 'full'\n")
    cfg = TrainConfig.from_toml(tmp_path / "t.toml")
    assert (cfg.optimisation.max_steps, cfg.method) == (7, "full")


def test_config_round_trips_the_cold_user_options(tmp_path: Path) -> None:
    default = TrainConfig()
    assert default.validation.val_k_values == (0, 1, 3, 5) and default.data.attribute_pairs
    cfg = TrainConfig().with_values(val_k_values=(0, 2), attribute_pairs=False)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    (tmp_path / "t.toml").write_text("[train]\nval_k_values = [1, 3]\nattribute_pairs = false\n")
    read = TrainConfig.from_toml(tmp_path / "t.toml")
    assert (read.validation.val_k_values, read.data.attribute_pairs) == ((1, 3), False)
    for bad in ((), (1, -1)):
        with pytest.raises(ValueError, match="val_k_values"):
            Validation(val_k_values=bad)


def test_attribute_pairs_hold_the_text_of_a_k0_query(tiny_dataset: Dataset) -> None:
    from coldbrew.train.run import _templates

    item_tpl, user_tpl = _templates(tiny_dataset)
    plain = build_pairs(tiny_dataset, item_template=item_tpl, user_template=user_tpl)
    both = build_pairs(
        tiny_dataset, item_template=item_tpl, user_template=user_tpl, attribute_pairs=True
    )
    assert all(p.anchor_id for p in plain)  # history pairs only
    added = [p for p in both if not p.anchor_id]
    assert both[: len(plain)] == plain
    assert len(added) == len(tiny_dataset.positives())  # one per positive of every user
    # what the zero-shot model encodes for a cold user who reveals nothing
    model = ZeroShotRecommender(HashingEncoder(), user_template=user_tpl).fit(tiny_dataset)
    k0_text = user_tpl.render_attributes(model.resolve(UserQuery(user_id="alice")).attributes)
    assert k0_text == "A user, age: 25-34, occupation: engineer"
    alice = [p for p in added if p.query_parts == (k0_text,)]
    assert {p.item_id for p in alice} == {"boots", "tent", "bottle"}


def test_validation_on_cold_users_is_the_mean_over_k_and_depends_on_the_model() -> None:
    from coldbrew.train.run import validation_recall

    data = two_topics(60, 300, per_user=12, seed=0, random_times=True)
    split = cold_user_split(data, val_fraction=0.2, seed=0)
    train = split.train_dataset(data)
    text = ZeroShotRecommender(HashingEncoder()).fit(train)
    blind = RandomRecommender(seed=0).fit(train)
    per_k = [evaluate(text, split, part="val", k_shot=k, ks=(20,)) for k in (0, 1, 3)]
    assert all(r.users for r in per_k)
    found = validation_recall(text, split, (0, 1, 3))
    assert found == pytest.approx(np.mean([r.metrics["recall@20"] for r in per_k]))
    assert found > 1.5 * validation_recall(blind, split, (0, 1, 3))
    # a k no validation user reaches is left out of the mean; none reached is an error
    assert validation_recall(text, split, (0, 1, 3, 50)) == pytest.approx(found)
    with pytest.raises(ValueError, match="no validation user"):
        validation_recall(text, split, (50,))


def test_cold_user_fine_tuning_needs_validation_users() -> None:
    from coldbrew.train.run import fine_tune

    data = planted_users()
    with pytest.raises(ValueError, match="val_fraction"):
        fine_tune(data, cold_user_split(data, seed=0), TrainConfig())


def test_pairs_join_items_of_the_same_user() -> None:
    data = planted()
    pairs = build_pairs(data, item_template=ItemTemplate(("title",)), seed=1)
    assert len(pairs) == len(data.interactions)
    for pair in pairs:
        assert pair.anchor_id != pair.item_id
        assert pair.anchor_id[:2] == pair.item_id[:2]  # same group
    assert build_pairs(data, item_template=ItemTemplate(("title",)), seed=1) == pairs
    assert len(build_pairs(data, item_template=ItemTemplate(("title",)), max_pairs=5)) == 5


def test_augmentation_keeps_the_first_part() -> None:
    rng = np.random.default_rng(0)
    parts = ("title", "a", "b", "c", "d")
    seen = {augment_parts(parts, rng) for _ in range(50)}
    assert all(p[0] == "title" and set(p[1:]) <= set(parts[1:]) for p in seen)
    assert len(seen) > 5


def test_in_batch_loss_masks_repeated_items() -> None:
    torch = pytest.importorskip("torch")
    from coldbrew.train.contrastive import in_batch_loss

    q = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    same = in_batch_loss(q, q, ["a", "a"], ["", ""], scale=20.0)
    differ = in_batch_loss(q, q.flip(0), ["a", "b"], ["", ""], scale=20.0)
    assert float(same) == pytest.approx(0.0, abs=1e-6)  # the duplicate is no negative
    assert float(differ) > 10
    # extra columns (hard negatives): a close one raises the loss, a repeat of the positive
    # does not count
    hard = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [0.1, 1.0]]), dim=-1)
    base = in_batch_loss(q, q, ["a", "b"], ["", ""], scale=20.0)
    harder = in_batch_loss(q, torch.cat([q, hard]), ["a", "b", "c", "d"], ["", ""], scale=20.0)
    repeat = in_batch_loss(q, torch.cat([q, hard]), ["a", "b", "a", "b"], ["", ""], scale=20.0)
    assert float(harder) > float(base) + 0.5
    assert float(repeat) == pytest.approx(float(base), abs=1e-6)


def test_mined_hard_negatives_are_close_but_never_liked() -> None:
    from coldbrew.text import HashingEncoder
    from coldbrew.train.pairs import mine_hard_negatives

    data = two_topics(n_users=12, n_items=40, per_user=5)
    template = ItemTemplate(("title",))
    pairs = build_pairs(data, item_template=template)
    encoder = HashingEncoder(64)

    def encode(texts: list[str]) -> np.ndarray:
        return encoder.encode(texts, kind="passage")

    mined = mine_hard_negatives(pairs, data, template, encode, count=2, skip=1, depth=10)
    again = mine_hard_negatives(pairs, data, template, encode, count=2, skip=1, depth=10)
    assert mined == again and len(mined) == len(pairs)
    liked = {u: set(h) for u, h in data.user_history().items()}
    trained = set(data.interactions["item_id"])
    assert set(data.items["item_id"]) - trained  # some items have no interactions ...
    texts = dict(zip(data.items["item_id"], data.items["title"]))
    topic = {i: t.split(" thing")[0] for i, t in texts.items()}
    same_topic = 0
    for pair in mined:
        assert len(pair.negatives) == 2 and pair.user_id
        for item_id, text in pair.negatives:
            assert item_id not in liked[pair.user_id] and item_id != pair.anchor_id
            assert item_id in trained  # ... and are never mined: they may be a user's next like
            assert text == texts[item_id]
            same_topic += topic[item_id] == topic[pair.item_id]
    # close to the user side: nearly all from the positive's own topic (chance: half)
    assert same_topic / (2 * len(mined)) > 0.8
    with pytest.raises(ValueError, match="depth"):
        mine_hard_negatives(pairs, data, template, encode, count=5, skip=5, depth=10)


@pytest.mark.slow
def test_tiny_run_lowers_loss_and_learns_the_planted_groups(tmp_path: Path) -> None:
    from coldbrew.models import ZeroShotRecommender
    from coldbrew.text.factory import make_encoder
    from coldbrew.train.run import fine_tune

    data = planted()
    before = group_precision(ZeroShotRecommender(make_encoder("default")).fit(data))
    assert before < 0.5
    split = planted_split(data)
    model, result = fine_tune(data, split, tiny_config(), tmp_path / "m")
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5])
    after = group_precision(model)
    assert after > before + 0.2, (before, after)

    # the versioned directory: model, encoder weights, adapter, report
    out = tmp_path / "m"
    assert (out / "encoder" / "model.safetensors").exists()
    assert (out / "lora" / "adapter_model.safetensors").exists()
    report = json.loads((out / "train.json").read_text())
    assert len(report["data"]["fingerprint"]) == 64
    assert report["config"]["optimisation"]["max_steps"] == 20
    assert report["metrics"]["best_step"] > 0
    loaded = Recommender.load(out)
    for g in range(len(GROUPS)):
        query = UserQuery(liked=(f"g{g}i0",))
        a, b = model.recommend(query, k=5), loaded.recommend(query, k=5)
        assert a.ids == b.ids
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


@pytest.mark.slow
def test_fgm_augmentation_and_hard_negatives_train_with_lora_and_frozen_embeddings(
    tmp_path: Path,
) -> None:
    """LoRA freezes the token embeddings; FGM must still perturb them, and validation passes
    (run without gradients) between steps must not disturb it."""
    from coldbrew.train.run import fine_tune

    data = planted()
    cfg = tiny_config(
        max_steps=6,
        eval_every=3,
        fgm_epsilon=1.0,
        augment=True,
        hard_negatives=1,
        hard_negative_skip=0,
        hard_negative_depth=5,
    )
    model, result = fine_tune(data, planted_split(data), cfg)
    assert len(result.losses) == 6 and all(np.isfinite(result.losses))
    assert model.recommend(UserQuery(liked=("g0i0",)), k=3).ids


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    from coldbrew.text.factory import make_encoder
    from coldbrew.text.templates import ItemTemplate as Tpl
    from coldbrew.train.contrastive import ContrastiveTrainer

    pairs = build_pairs(planted(), item_template=Tpl(("title",)))
    cfg = tiny_config(max_steps=6, checkpoint_every=1)

    def weights(trainer: ContrastiveTrainer) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in trainer._trainable_state().items()}

    straight = ContrastiveTrainer(cfg, make_encoder("default").st_model, pairs)
    full = straight.train()
    crashed = ContrastiveTrainer(
        cfg, make_encoder("default").st_model, pairs, checkpoint_dir=tmp_path
    )
    crashed.train(stop_after=3)
    resumed = ContrastiveTrainer(
        cfg, make_encoder("default").st_model, pairs, checkpoint_dir=tmp_path
    )
    again = resumed.train()
    assert again.losses == pytest.approx(full.losses, rel=1e-5)
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-6)


def test_distillation_loss_is_zero_when_the_student_agrees() -> None:
    torch = pytest.importorskip("torch")
    from coldbrew.train.contrastive import distill_loss

    cosines = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.1]], dtype=np.float32)
    teacher = 20.0 * cosines  # teachers give logits; the student's cosines are scaled by 20
    for kind in ("kl", "margin-mse"):
        agree = distill_loss(torch.from_numpy(cosines), teacher, scale=20.0, kind=kind)
        flipped = torch.from_numpy(cosines[:, ::-1].copy())
        disagree = distill_loss(flipped, teacher, scale=20.0, kind=kind)
        assert float(agree) == pytest.approx(0.0, abs=1e-5), kind
        assert float(disagree) > 1.0, kind
        flat = distill_loss(torch.from_numpy(cosines), np.zeros((2, 3), np.float32), 20.0, kind)
        assert float(flat) == 0.0  # a teacher with no opinion teaches nothing
    with pytest.raises(ValueError, match="margin-mse"):
        distill_loss(torch.from_numpy(cosines), teacher, 20.0, kind="mse")


def test_distillation_reads_only_the_entries_the_teacher_scored() -> None:
    """A cross-encoder scores a few entries per row (NaN elsewhere): the loss must depend on
    those alone, and its gradient must stay finite."""
    torch = pytest.importorskip("torch")
    from coldbrew.train.contrastive import distill_loss

    teacher = np.array([[5.0, 1.0, np.nan], [np.nan, 4.0, 0.0], [np.nan, np.nan, 3.0]])
    for kind in ("kl", "margin-mse"):
        student = torch.tensor([[0.5, 0.2, 0.9], [0.1, 0.3, 0.2], [0.0, 0.4, 0.1]])
        student.requires_grad_(True)
        loss = distill_loss(student, teacher, scale=10.0, kind=kind)
        loss.backward()
        assert student.grad is not None and bool(torch.isfinite(student.grad).all())
        # the unscored entries and the row with the positive alone get no gradient
        assert float(student.grad[0, 2]) == 0.0 and float(student.grad[1, 0]) == 0.0
        assert float(student.grad[2].abs().sum()) == 0.0
        # changing an unscored entry changes nothing
        moved = student.detach().clone()
        moved[0, 2] = -0.9
        again = distill_loss(moved, teacher, scale=10.0, kind=kind)
        assert float(again) == pytest.approx(float(loss.detach()), abs=1e-6)


def test_fingerprint_changes_with_the_data() -> None:
    from coldbrew.train.run import fingerprint

    data = planted()
    fewer = data.with_interactions(data.interactions.iloc[1:])
    assert fingerprint(data) == fingerprint(data.with_interactions(data.interactions[::-1]))
    assert fingerprint(data) != fingerprint(fewer)


def test_train_command_merges_toml_and_flags(tmp_path: Path) -> None:
    from coldbrew.cli.main import build_parser
    from coldbrew.cli.train import config_from_args

    (tmp_path / "t.toml").write_text(
        "[train]\nmax_steps = 7\n\n[train.optimisation]\nlearning_rate = 0.001\nwarmup_steps = 3\n"
    )
    args = build_parser().parse_args(
        ["train", "--dataset", "ml-100k", "--config", str(tmp_path / "t.toml"),
         "--max-steps", "9", "--augment", "--out", str(tmp_path / "m"),
         "--distill-weight", "1", "--distill-teacher", "cross-encoder",
         "--distill-loss", "margin-mse", "--teacher-steps", "50"]
    )  # fmt: skip
    cfg = config_from_args(args)
    optimisation, distillation = cfg.optimisation, cfg.distillation
    assert (optimisation.max_steps, optimisation.learning_rate, optimisation.warmup_steps) == (
        9,
        0.001,
        3,
    )
    assert cfg.augmentation.augment and cfg.method == "lora"  # lora: neither says otherwise
    assert (distillation.distill_weight, distillation.distill_teacher) == (1.0, "cross-encoder")
    assert (distillation.distill_loss, distillation.teacher_steps) == ("margin-mse", 50)


def test_train_threads_default_to_one_and_the_help_names_the_cpus(tmp_path: Path) -> None:
    import os

    from coldbrew.cli.main import build_parser
    from coldbrew.cpus import usable_cpus

    base = ["train", "--dataset", "ml-100k", "--out", str(tmp_path / "m")]
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert usable_cpus() == allowed
    parser = build_parser("train")
    assert parser.parse_args(base).threads == 1  # a shared machine's busy core stalls them all
    assert parser.parse_args([*base, "--threads", "2"]).threads == 2


def test_only_the_named_command_is_imported() -> None:
    """`coldbrew train` says its first line sooner when the other commands' modules (the
    service, the benchmark runner, scikit-learn) are not imported first."""
    import subprocess
    import sys

    probe = (
        "import sys; from coldbrew.cli.main import build_parser; build_parser('train'); "
        "print(sorted(m for m in ('coldbrew.cli.serve', 'coldbrew.cli.bench', 'scipy.stats', "
        "'coldbrew.serve.app') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
    every = (
        "from coldbrew.cli.main import build_parser; "
        "print(len(build_parser()._actions[-1].choices))"
    )
    out = subprocess.run([sys.executable, "-c", every], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "7"  # help lists every command


def test_catalogue_pairs_pair_each_item_text_with_itself() -> None:
    from coldbrew.train.pairs import catalogue_pairs

    data = planted()
    template = ItemTemplate(("title", "genre"), "{title}. {genre}")
    data.items["genre"] = ["Drama"] * len(data.items)
    pairs = catalogue_pairs(data, template, items="catalogue")
    assert len(pairs) == len(data.items)
    first = pairs[0]
    assert first.item_id == "g0i0" and first.item == "blorf zint. Drama"
    assert first.query_parts == ("blorf zint", "Drama") and first.anchor_id == ""
    # only the items with interactions: the 30 distractors nobody liked are left out
    warm = catalogue_pairs(data, template, items="train")
    assert len(warm) == sum(len(g) for g in GROUPS)
    assert all(p.item_id.startswith("g") for p in warm)
    with pytest.raises(ValueError, match="train or catalogue"):
        DaptOptions(dapt_items="test")


@pytest.mark.slow
def test_domain_adaptation_stage_trains_on_item_text_then_hands_over(tmp_path: Path) -> None:
    from coldbrew.text.factory import make_encoder
    from coldbrew.text.templates import ItemTemplate as Tpl
    from coldbrew.train.run import adapt_to_domain, fine_tune

    data = planted()
    encoder = make_encoder("default")
    texts = ["blorf zint", "wezzle dorn"]
    before = encoder.encode(texts)
    cfg = tiny_config(max_steps=4, dapt_steps=6, eval_every=2)
    adapted, stage = adapt_to_domain(encoder.st_model, data, Tpl(("title",)), cfg)
    assert adapted is encoder.st_model  # adapters merged into the same model
    assert stage.steps == 6 and len(stage.losses) == 6
    after = encoder.encode(texts)
    assert np.abs(after - before).max() > 1e-3  # the stage changed the weights
    assert not any("lora" in name for name, _ in adapted.named_parameters())

    # inside fine_tune: both stages run, the interaction stage on top; no leftovers
    model, result = fine_tune(data, planted_split(data), cfg, tmp_path / "m")
    assert len(result.losses) == 4 and all(np.isfinite(result.losses))
    assert not (tmp_path / "m" / "dapt").exists()
    # both adapters are kept: lora applies on top of the base with lora-dapt merged
    assert (tmp_path / "m" / "lora-dapt" / "adapter_model.safetensors").exists()
    assert (tmp_path / "m" / "lora" / "adapter_model.safetensors").exists()
    report = json.loads((tmp_path / "m" / "train.json").read_text())
    assert report["config"]["dapt"]["dapt_steps"] == 6
    assert model.recommend(UserQuery(liked=("g0i0",)), k=3).ids


@pytest.mark.slow
def test_cold_user_run_validates_on_revealed_items_and_trains_on_attributes(
    tmp_path: Path,
) -> None:
    from coldbrew.train.run import fine_tune

    data = planted_users()
    split = cold_user_split(data, val_fraction=0.2, seed=0)
    _, result = fine_tune(data, split, tiny_config(), tmp_path / "m")
    curve = [v["val_recall@20"] for v in result.validation]
    # validation sees what training changes (the old by-id queries scored a constant)
    assert result.best_step > 0 and result.best_metric > curve[0] + 0.1, curve
    report = json.loads((tmp_path / "m" / "train.json").read_text())
    # each training positive gives a history pair and an attribute pair
    assert report["data"]["pairs"] == 2 * len(split.train)
    assert report["config"]["validation"]["val_k_values"] == [0, 1, 3, 5]


@pytest.mark.slow
def test_train_command_on_cold_users_reports_test_metrics_per_k(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_folder(planted_users(), tmp_path / "data")
    argv = ["train", "--data", str(folder), "--protocol", "cold-user", "--max-steps", "4",
            "--eval-every", "2", "--batch-size", "8", "--max-seq-length", "16",
            "--learning-rate", "0.003", "--no-progress", "--out", str(tmp_path / "m")]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((tmp_path / "m" / "train.json").read_text())
    assert "test" not in report
    by_k = report["test_by_k"]
    assert list(by_k) == ["0", "1", "3", "5", "10", "20"]
    # three positives each: k=0 and k=1 leave something to find, k >= 3 does not
    assert by_k["0"]["users"] == by_k["1"]["users"] == 4 and by_k["3"]["users"] == 0
    assert by_k["0"]["recall@20"] != by_k["1"]["recall@20"]
    out = capsys.readouterr().out
    assert "test k=0 (4 users) recall@20" in out and "test k=20 (0 users)" in out
    assert "mean over k=0,1,3,5" in out


PHASES = [
    "coldbrew train: loading the training libraries",
    "loading the data",
    "splitting it for the cold-user protocol",
    "building training pairs from",
    "loading the encoder (default)",
    "fine-tune: validating the starting weights",
    "fine-tune: step 0 validation recall@20",
    "fine-tune: 4 steps",
    "fine-tune: step 2 validation recall@20",
    "fine-tune: step 4 validation recall@20",
    "encoding the catalogue with the weights of step",
    "scoring the test split",
]


@pytest.mark.slow
def test_train_command_announces_each_phase_before_its_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every phase prints a line on stderr as it starts, the first before any model work, and
    every validation prints its metric; --no-progress silences them all."""
    folder = write_folder(planted_users(), tmp_path / "data")
    argv = ["train", "--data", str(folder), "--protocol", "cold-user", "--max-steps", "4",
            "--eval-every", "2", "--batch-size", "8", "--max-seq-length", "16"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "m")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[")]
    found = [next(i for i, line in enumerate(lines) if phase in line) for phase in PHASES]
    assert found == sorted(found) and found[0] == 0
    metric = next(line for line in lines if "step 4 validation" in line)
    assert 0.0 <= float(metric.split("recall@20 ")[1].split()[0]) <= 1.0
    assert main([*argv, "--no-progress", "--out", str(tmp_path / "quiet")]) == 0
    assert not [line for line in capsys.readouterr().err.splitlines() if line.startswith("[")]


@pytest.mark.slow
def test_separate_towers_train_apart_and_round_trip(tmp_path: Path) -> None:
    from coldbrew.models.finetuned import FineTunedRecommender
    from coldbrew.train.run import fine_tune

    data = planted()
    out = tmp_path / "m"
    model, result = fine_tune(data, planted_split(data), tiny_config(towers="separate"), out)
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5])
    assert isinstance(model, FineTunedRecommender) and model.user_encoder is not None
    assert (out / "user_encoder" / "model.safetensors").exists()
    assert (out / "lora-user" / "adapter_model.safetensors").exists()
    # the towers trained apart: the same text lands in different places
    text = [GROUPS[0][0]]
    items = model.encoder.encode(text, kind="passage")
    users = model.user_encoder.encode(text, kind="passage")
    assert float(items[0] @ users[0]) < 0.999
    # liked items are read by the user tower
    np.testing.assert_allclose(
        model.liked_item_vectors[model.item_ids.rows(["g0i0"])], users, atol=1e-5
    )
    assert group_precision(model) > 0.5
    loaded = Recommender.load(out)
    assert isinstance(loaded, FineTunedRecommender) and loaded.user_encoder is not None
    for query in (UserQuery(liked=("g1i0", "g1i1")), UserQuery(text="quadle mip")):
        a, b = model.recommend(query, k=5), loaded.recommend(query, k=5)
        assert a.ids == b.ids
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    with pytest.raises(ValueError, match="towers"):
        TrainConfig(towers="three")


@pytest.mark.slow
def test_run_with_a_domain_stage_resumes_after_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash in the interaction stage, after the domain stage finished: running the same
    call again resumes both stages' checkpoints and ends with the uninterrupted run's model."""
    from coldbrew.train.contrastive import ContrastiveTrainer
    from coldbrew.train.run import fine_tune

    data = planted()
    cfg = tiny_config(max_steps=4, eval_every=2, checkpoint_every=1, dapt_steps=3)
    straight, _ = fine_tune(data, planted_split(data), cfg, tmp_path / "straight")

    original = ContrastiveTrainer._loss
    calls = {"n": 0}

    def crash_on_the_sixth_step(self: ContrastiveTrainer, batch: list, rng: object) -> object:
        calls["n"] += 1
        if calls["n"] == 6:  # 3 domain steps, then the interaction stage's third
            raise KeyboardInterrupt
        return original(self, batch, rng)  # type: ignore[arg-type]

    monkeypatch.setattr(ContrastiveTrainer, "_loss", crash_on_the_sixth_step)
    with pytest.raises(KeyboardInterrupt):
        fine_tune(data, planted_split(data), cfg, tmp_path / "crashed")
    assert (tmp_path / "crashed" / "dapt" / "checkpoint").exists()
    assert (tmp_path / "crashed" / "checkpoint").exists()
    monkeypatch.undo()
    resumed, _ = fine_tune(data, planted_split(data), cfg, tmp_path / "crashed")
    np.testing.assert_allclose(resumed.item_vectors, straight.item_vectors, atol=1e-5)
    report = json.loads((tmp_path / "crashed" / "train.json").read_text())
    assert report["stages"]["dapt"]["steps"] == 3
    assert not (tmp_path / "crashed" / "dapt").exists()  # scratch goes once the model is written


def test_a_run_never_validated_reports_no_best_metric_rather_than_minus_infinity() -> None:
    from coldbrew.train.contrastive import TrainResult

    report = TrainResult().to_dict()
    assert report["best_val_recall@20"] is None
    json.dumps(report, allow_nan=False)  # strict JSON


def test_length_chunks_sort_by_length_and_cover_every_row() -> None:
    from coldbrew.train.batching import length_chunks

    chunks = length_chunks([5, 1, 9, 1, 3], size=2)
    assert [c.tolist() for c in chunks] == [[1, 3], [4, 0], [2]]
    with pytest.raises(ValueError, match="chunk size"):
        length_chunks([1], size=0)


@pytest.mark.slow
def test_step_encoding_in_length_chunks_matches_reading_each_text_alone() -> None:
    """Distinct texts, sorted into chunks, padded per chunk: each row must still be the
    vector of its own text (dropout off), in the caller's order, on both sides."""
    import torch

    from coldbrew.text.factory import make_encoder
    from coldbrew.train.batching import embed_sides

    model = make_encoder("default").st_model
    model.eval()
    queries = ["a", "blorf zint quadle mip snorp vek trabble yon", "a", "glimp stor"]
    items = ["glimp stor", "wezzle dorn fropple kin yastle", "a"]
    with torch.no_grad():
        got = embed_sides(model, [queries, items], size=2)
    for texts, vectors in zip([queries, items], got):
        alone = model.encode(texts, normalize_embeddings=True, batch_size=1)
        assert vectors.shape == alone.shape
        assert np.allclose(vectors.numpy(), alone, atol=1e-5)
