"""The command line, end to end on the bundled sample and small folders (hashing encoder)."""

from __future__ import annotations

import json
import re
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


def test_recommend_takes_the_diversity_and_novelty_controls(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = [
        "recommend", "--data", str(SAMPLE_DIR), "--encoder", "hashing",
        "--cache-dir", str(tmp_path), "--text", "lightweight spring jacket", "-k", "5", "--json",
    ]  # fmt: skip
    plain = json.loads(run(capsys, *args)[1])
    code, out, _ = run(capsys, *args, "--diversity", "1", "--novelty", "0.3")
    assert code == 0
    diverse = json.loads(out)
    assert len(diverse) == 5 and diverse[0]["item_id"] == plain[0]["item_id"]
    assert [r["item_id"] for r in diverse] != [r["item_id"] for r in plain]
    code, _, err = run(capsys, *args, "--diversity", "1.5")
    assert code == 2
    assert "diversity must be in [0, 1]" in err and "Traceback" not in err


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
    assert "skip them with --skip-bad-rows" in err and "on_bad_rows" not in err
    code, out, err = run(capsys, *args, "--skip-bad-rows")
    assert code == 0 and "skipped 1 bad rows" in err and out


def test_eval_writes_json_with_every_model_and_its_intervals(
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
    # each metric's 95% interval brackets its mean, in the JSON and in the printed table
    assert "95% bootstrap interval" in out
    for row in report["results"]:
        for metric, (low, high) in row["ci95"].items():
            assert low <= row[metric] <= high
            assert f"{row[metric]:.4f} [{low:.3f},{high:.3f}]" in out
    zeroshot = report["results"][0]["ci95"]["ndcg@20"]
    assert zeroshot[0] < zeroshot[1]  # a real spread over the sample's test users


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


def test_the_in_memory_demo_gives_each_recommendation_its_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What ``demo --no-serve`` prints where the [serve] extra is not installed."""
    from coldbrew.cli.demo import memory_demo
    from coldbrew.text.factory import make_encoder

    memory_demo(make_encoder("hashing"), 2)
    lines = capsys.readouterr().out.splitlines()
    ranked = [n for n, line in enumerate(lines) if re.match(r"  -?\d\.\d{3}  \D", line)]
    recommended = [n for n in ranked if n + 1 < len(lines) and "why: " in lines[n + 1]]
    assert len(recommended) == 10  # five examples, two items each, each with a reason
    text = "\n".join(lines)
    assert "Matches your words “jacket”" in text and "which you liked." in text
    assert "Close in meaning to your profile (age: 18-24" in text


# ---- a new shop's own catalogue: no interactions, or one or two (issues 24 and 27) ----------
ZH_TITLES = [
    "三体 科幻小说",
    "红楼梦 古典小说",
    "西游记 神话小说",
    "电饭煲 厨房电器",
    "不粘锅 炒菜锅",
    "保温杯 不锈钢水杯",
    "登山鞋 防水徒步鞋",
    "帐篷 双人露营帐篷",
    "睡袋 冬季露营睡袋",
    "机械键盘 游戏键盘",
    "无线鼠标 游戏鼠标",
    "降噪耳机 蓝牙耳机",
    "羽绒服 冬季保暖外套",
    "风衣 春季薄外套",
    "衬衫 夏季亚麻衬衫",
    "绿茶 龙井茶叶",
    "咖啡豆 意式咖啡",
    "月饼 中秋礼盒",
    "瑜伽垫 健身器材",
    "哑铃 力量训练",
    "跑步鞋 轻便运动鞋",
    "台灯 护眼学习灯",
    "书包 学生双肩包",
    "钢笔 书法练字笔",
]
EN_ITEMS = {
    "jacket": ("Lightweight spring jacket", "A breathable shell for spring outings"),
    "parka": ("Insulated winter parka", "Warm down coat with a hood"),
    "tent": ("Ultralight camping tent", "Two person tent for hiking trips"),
    "keyboard": ("Mechanical keyboard", "Brown switches for gaming"),
    "skillet": ("Cast iron skillet", "A heavy pan for searing steak"),
    "kettle": ("Gooseneck kettle", "Pour over coffee at home"),
}
SHOP_TOML = """name = "shop"
[items]
file = "items.csv"
id = "sku"
text = ["title"]
"""
EVENTS_TOML = """[interactions]
file = "events.csv"
user = "uid"
item = "sku"
"""


def write_shop(folder: Path, language: str, n_events: int, toml: str = SHOP_TOML) -> Path:
    """A shop folder: English items with a description, or the 24 Chinese titles; ``n_events``
    likes (no ``[interactions]`` table at all for none)."""
    folder.mkdir(parents=True, exist_ok=True)
    if language == "zh":
        rows = [f"z{n:02d},{title}," for n, title in enumerate(ZH_TITLES, 1)]
    else:
        rows = [f"{sku},{title},{about}" for sku, (title, about) in EN_ITEMS.items()]
    (folder / "items.csv").write_text("sku,title,description\n" + "\n".join(rows) + "\n")
    skus = [r.split(",")[0] for r in rows]
    events = [f"u{n},{skus[3 * n + 1]}" for n in range(n_events)]
    (folder / "events.csv").write_text("uid,sku\n" + "".join(f"{e}\n" for e in events))
    (folder / "dataset.toml").write_text(toml + (EVENTS_TOML if n_events else ""))
    return folder


@pytest.mark.parametrize("n_events", [0, 1, 2])
@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [("en", "an ultralight tent for camping", "tent"), ("zh", "露营帐篷", "z08")],
)
def test_recommend_answers_a_catalogue_with_few_or_no_interactions(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    n_events: int,
    language: str,
    text: str,
    expected: str,
) -> None:
    folder = write_shop(tmp_path / "shop", language, n_events)
    args = ["recommend", "--dataset", str(folder), "--encoder", "hashing"]
    args += ["--cache-dir", str(tmp_path / "cache"), "--text", text, "-k", "3", "--json"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 3 and rows[0]["item_id"] == expected
    plural = "" if n_events == 1 else "s"
    assert f"model: hybrid fitted on {n_events} positive interaction{plural}: " in err
    if not n_events:
        assert "language model only (lm, lexical); silent: cf, " in err


def test_a_chinese_catalogue_with_one_interaction_is_answered_by_default(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Issue 24's coldest case as a newcomer runs it: the default (auto) encoder and model."""
    folder = write_shop(tmp_path / "shop", "zh", 1)
    args = ["recommend", "--dataset", str(folder), "--cache-dir", str(tmp_path / "cache")]
    code, out, err = run(capsys, *args, "--text", "想买一个露营用的帐篷", "-k", "3", "--json")
    assert code == 0, err
    assert "catalogue language: zh" in err and "fitted on 1 positive interaction" in err
    assert json.loads(out)[0]["title"] == "帐篷 双人露营帐篷"


def test_editing_dataset_toml_refits_the_cached_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Which columns are text is part of the cache key: the next call reads the new text."""
    folder = write_shop(tmp_path / "shop", "en", 2)
    args = ["recommend", "--dataset", str(folder), "--encoder", "hashing"]
    args += ["--cache-dir", str(tmp_path / "cache"), "--text", "pour over coffee", "--json"]
    code, out, err = run(capsys, *args)
    assert code == 0 and "fitting on" in err and "so the next call loads it at once" in err
    assert re.search(r"fitting the hybrid: 100%.* (\d+)/\1 ", err)  # a bar over its steps
    assert err.index("fitting on") < err.index("fitting the hybrid")  # said before it starts
    assert json.loads(out)[0]["item_id"] != "kettle"  # its title says nothing of coffee
    toml = (folder / "dataset.toml").read_text()
    edited = toml.replace('text = ["title"]', 'text = ["title", "description"]')
    (folder / "dataset.toml").write_text(edited)
    code, out, err = run(capsys, *args)
    assert code == 0 and "fitting on" in err and "fitted before" not in err
    assert json.loads(out)[0]["item_id"] == "kettle"
    code, out, err = run(capsys, *args)  # unchanged since: the saved fit answers
    assert code == 0 and "fitted before" in err and json.loads(out)[0]["item_id"] == "kettle"


def test_recommend_always_says_which_model_answers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = write_shop(tmp_path / "shop", "en", 2)
    args = ["recommend", "--dataset", str(folder), "--encoder", "hashing", "--text", "coffee"]
    args += ["--cache-dir", str(tmp_path / "cache")]
    code, _, err = run(capsys, *args, "--model", "zeroshot")
    assert code == 0 and "model: zero-shot (the language model alone" in err
    code, _, err = run(capsys, *args)  # the default: the hybrid, fitted and saved in the cache
    assert code == 0 and "model: hybrid fitted on 2 positive interactions" in err
    (saved,) = (tmp_path / "cache" / "models").iterdir()
    code, _, err = run(capsys, *args, "--model", str(saved))
    assert code == 0 and "model: hybrid fitted on 2" in err and f"(loaded from {saved})" in err


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("title", "name"), "items.csv [title]: missing column 'title' for items"),
        (
            ('text = ["title"]', 'text = ["title"]\nattributes = ["brand"]'),
            "items.csv [brand]: missing column 'brand' for items (named in dataset.toml); "
            "the file has ['sku', 'title', 'description']",
        ),
    ],
    ids=["text column", "attribute column"],
)
def test_a_named_column_missing_from_its_file_stops_recommend(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    folder = write_shop(tmp_path / "shop", "en", 1)
    file = folder / ("items.csv" if edit[0] == "title" else "dataset.toml")
    file.write_text(file.read_text().replace(*edit, 1))
    code, _, err = run(
        capsys,
        "recommend", "--dataset", str(folder), "--encoder", "hashing",
        "--cache-dir", str(tmp_path / "cache"), "--text", "tent",
    )  # fmt: skip
    assert code == 2 and "Traceback" not in err
    assert expected in err


def test_eval_says_a_catalogue_alone_has_nothing_to_evaluate_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = write_shop(tmp_path / "shop", "en", 0)
    code, _, err = run(capsys, "eval", "--dataset", str(folder), "--encoder", "hashing")
    assert code == 2 and "Traceback" not in err
    assert "shop has no positive interactions to evaluate on" in err


USERS_TOML = """[users]
file = "users.csv"
id = "uid"
attributes = ["age"]
"""


def demo_sections(out: str) -> dict[str, list[str]]:
    """The demo's output: each example's header line -> the titles it recommended."""
    sections: dict[str, list[str]] = {}
    header = ""
    for line in out.splitlines():
        ranked = re.match(r"  -?\d+\.\d{3}  (\S.*)", line)
        if ranked and header:
            sections[header].append(ranked.group(1))
        elif line and not line.startswith(" "):
            header = line
            sections[header] = []
    return sections


def demo_shop(folder: Path, n_events: int) -> Path:
    """``write_shop``'s English shop; with two likes, its users have an age too."""
    if n_events < 2:
        return write_shop(folder, "en", n_events)
    write_shop(folder, "en", n_events, SHOP_TOML + USERS_TOML)
    (folder / "users.csv").write_text("uid,age\nu0,25\nu1,40\n")
    return folder


def assert_demo_answers_from(out: str, n_events: int) -> None:
    """Every example that ran recommended the shop's own items; the rest say why they did not."""
    titles = {title for title, _ in EN_ITEMS.values()}
    sections = demo_sections(out)
    examples = {
        h: t
        for h, t in sections.items()
        if h.split(":")[0].startswith(("free", "attr", "two", "known"))
    }
    ran = {h: t for h, t in examples.items() if "skipped" not in h}
    assert any(h.startswith("free text (from an item's title): ") for h in ran)
    assert any(h.startswith("two clicks: ") for h in ran)
    for header, recommended in ran.items():
        assert len(recommended) == 2 and set(recommended) <= titles, (header, recommended)
    assert all("en-0" not in h and "u1 (hiker)" not in h for h in sections)  # not the sample's
    if n_events == 0:
        assert "known user: skipped (no user has interactions yet)" in sections
        assert "new item's reach: skipped (no users yet)" in sections
    else:
        assert any(h.startswith("known user u0 (1 liked)") for h in ran)
        reach = (
            "new item 'New: Lightweight spring jacket' reaches existing users, best match first:"
        )
        assert sections[reach]  # the users' ids, best first
    if n_events == 2:
        assert any(h.startswith("attributes only (a stored user's): {'age': ") for h in ran)
    else:
        assert "attributes only: skipped (no stored user has attributes)" in sections


@pytest.mark.parametrize("n_events", [0, 1, 2])
def test_demo_on_your_own_catalogue_asks_with_its_own_items(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, n_events: int
) -> None:
    folder = demo_shop(tmp_path / "shop", n_events)
    db = tmp_path / "demo.sqlite"
    args = ["demo", "--data", str(folder), "--encoder", "hashing", "--db", str(db)]
    code, out, err = run(capsys, *args, "--no-serve", "-k", "2")
    assert code == 0, err
    assert "shop catalogue: 6 items" in out
    learned = "hybrid fitted on 2 positive interactions: answering with " if n_events == 2 else ""
    assert f"       {learned or 'zeroshot'}" in out  # what the served model could learn
    assert_demo_answers_from(out, n_events)


@pytest.mark.parametrize("n_events", [0, 1, 2])
def test_the_in_memory_demo_on_your_own_catalogue(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, n_events: int
) -> None:
    """``demo --data --no-serve`` where the [serve] extra is not installed."""
    from coldbrew.cli.demo import memory_demo
    from coldbrew.cli.demo_examples import catalogue_plan
    from coldbrew.data import load_folder
    from coldbrew.text.factory import make_encoder

    dataset = load_folder(demo_shop(tmp_path / "shop", n_events))
    memory_demo(make_encoder("hashing"), 2, dataset, catalogue_plan(dataset))
    out = capsys.readouterr().out
    assert "why: " in out and "model: zeroshot" in out
    assert_demo_answers_from(out, n_events)
