"""Dataset folders: the happy path, and every kind of bad input named by file, line and field."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from coldbrew.data import (
    DataError,
    DatasetNotFoundError,
    load_dataset,
    load_folder,
    sample_dataset,
)
from folders import EVENTS_CSV, ITEMS_CSV, SPEC, write_folder


def test_folder_loads_into_canonical_columns(tmp_path: Path) -> None:
    data = load_folder(write_folder(tmp_path))
    assert data.name == "shop"
    assert list(data.items["item_id"]) == ["1", "2", "3"]
    assert data.items.loc[0, "description"] == "Light shell jacket"  # whitespace normalised
    assert list(data.interactions.columns) == ["user_id", "item_id", "value", "timestamp"]
    assert len(data.interactions) == 3  # the exact duplicate is dropped ...
    assert data.report is not None and data.report.duplicates_dropped == 1  # ... and reported
    iso = pd.Timestamp("2024-01-02T10:00:00", tz="UTC").timestamp()
    assert data.interactions.loc[1, "timestamp"] == pytest.approx(iso)
    assert data.spec.positive_threshold == 4
    assert data.user_history() == {"a": ["1", "3"], "b": ["2"]}


def test_parquet_and_jsonl_read_the_same(tmp_path: Path) -> None:
    items = pd.read_csv(pd.io.common.StringIO(ITEMS_CSV), dtype=str)
    items.to_parquet(tmp_path / "items.parquet")
    spec = SPEC.replace('file = "items.csv"', 'file = "items.parquet"')
    data = load_folder(write_folder(tmp_path, **{"dataset.toml": spec}))
    assert list(data.items["title"]) == ["Spring jacket", "Keyboard", "Tent"]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"events.csv": EVENTS_CSV + "a,99,5,1\n"}, "events.csv, line 6 [sku]: unknown item id"),
        ({"events.csv": EVENTS_CSV + "zed,1,5,1\n"}, "events.csv, line 6 [uid]: unknown user id"),
        ({"events.csv": EVENTS_CSV + "a,2,great,1\n"}, "events.csv, line 6 [rating]: not a number"),
        ({"events.csv": EVENTS_CSV + "a,2,5,yesterday\n"}, "line 6 [when]: not a timestamp"),
        ({"items.csv": ITEMS_CSV + "4,,,toys\n"}, "items.csv, line 5 [title/description]: empty"),
        ({"items.csv": ITEMS_CSV + "2,Again,dup,x\n"}, "items.csv, line 5 [sku]: duplicate"),
        ({"items.csv": ITEMS_CSV + ",No id,x,y\n"}, "items.csv, line 5 [sku]: empty id"),
        # the file's own line: blank lines and a quoted value over two lines counted
        (
            {"events.csv": EVENTS_CSV + '\n  \na,1,5,"1\n2"\n\nb,99,5,1\n'},
            "events.csv, line 8 [when]: not a timestamp",
        ),
        ({"events.csv": EVENTS_CSV + 'a,1,5,"1\n2"\nb,9,5,1\n'}, "events.csv, line 8 [sku]"),
        ({"users.jsonl": '{"uid": "a"}\n{oops\n'}, "users.jsonl, line 2: not valid JSON"),
        (
            {"items.csv": ITEMS_CSV.replace("Tent", "Caf\xe9").encode("latin-1")},
            "items.csv, line 4: not valid utf-8 (byte 0xe9)",
        ),
        (
            {"events.csv": "user,sku,rating,when\na,1,5,1\n"},
            "[uid]: missing column 'uid' for interactions",
        ),
        ({"dataset.toml": SPEC.replace('id = "sku"', 'idd = "sku"')}, "unknown keys ['idd']"),
        ({"dataset.toml": SPEC.replace("[items]", "[things]")}, "unknown keys ['things']"),
    ],
)
def test_bad_input_is_named_precisely(tmp_path: Path, override: dict, expected: str) -> None:
    with pytest.raises(DataError) as info:
        load_folder(write_folder(tmp_path, **override))
    assert expected in str(info.value)
    assert "--skip" not in str(info.value)  # the library speaks Python: on_bad_rows="skip"


def test_skip_mode_keeps_good_rows_and_reports_bad_ones(tmp_path: Path) -> None:
    events = EVENTS_CSV + "a,99,5,1\nb,1,oops,1\n"
    folder = write_folder(
        tmp_path,
        **{
            "events.csv": events,
            "users.jsonl": '{"uid":"a","age":30}\n{"uid":"b","about":"x"}\n[1]\n',
        },
    )
    data = load_folder(folder, on_bad_rows="skip")
    assert len(data.interactions) == 3
    assert data.report is not None
    reasons = [str(p) for p in data.report.skipped]
    assert any("line 6 [sku]: unknown item id" in r for r in reasons)
    assert any("line 7 [rating]: not a number" in r for r in reasons)
    assert any("users.jsonl, line 3" in r for r in reasons)
    assert "skipped 3 bad rows" in data.report.summary()


def test_declared_latin1_encoding_reads(tmp_path: Path) -> None:
    spec = SPEC.replace(
        'text = ["title", "description"]', 'text = ["title", "description"]\nencoding = "latin-1"'
    )
    items = ITEMS_CSV.replace("Tent", "Caf\xe9").encode("latin-1")
    data = load_folder(write_folder(tmp_path, **{"dataset.toml": spec, "items.csv": items}))
    assert "Café" in set(data.items["title"])


def test_missing_folder_and_missing_benchmark_say_where(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no dataset\.toml"):
        load_folder(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="--data-root"):
        load_dataset("ml-100k", data_root=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="neither a benchmark"):
        load_dataset(str(tmp_path / "nowhere"))


def test_sample_catalogue_is_bilingual_and_valid() -> None:
    data = sample_dataset()
    assert len(data.items) >= 30
    assert data.report is not None and not data.report.skipped
    assert data.items["title"].str.contains(r"[\u4e00-\u9fff]").any()
    assert data.items["title"].str.contains(r"[a-z]").any()
    assert set(data.interactions["item_id"]) <= set(data.items["item_id"])


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (  # the case: the CSV's `description` renamed, dataset.toml not
            {"items.csv": ITEMS_CSV.replace("description", "desc")},
            "items.csv [description]: missing column 'description' for items (named in "
            "dataset.toml); the file has ['sku', 'title', 'desc', 'category']",
        ),
        (
            {"items.csv": ITEMS_CSV.replace("category", "kind")},
            "items.csv [category]: missing column 'category' for items (named in dataset.toml); "
            "the file has ['sku', 'title', 'description', 'kind']",
        ),
        (
            {"users.jsonl": '{"uid": "a", "years": 30, "about": "hiker"}\n'},
            "users.jsonl [age]: missing column 'age' for users (named in dataset.toml); "
            "the file has ['uid', 'years', 'about']",
        ),
        (
            {"users.jsonl": '{"uid": "a", "age": 30}\n'},
            "users.jsonl [about]: missing column 'about' for users",
        ),
    ],
)
def test_every_named_text_and_attribute_column_must_exist(
    tmp_path: Path, override: dict, expected: str
) -> None:
    with pytest.raises(DataError) as info:
        load_folder(write_folder(tmp_path, **override))
    assert expected in str(info.value)


@pytest.mark.parametrize(
    "spec_or_file",
    [
        {"dataset.toml": SPEC.split("[interactions]")[0]},  # no [interactions] table
        {"events.csv": ""},  # an empty file
        {"events.csv": "uid,sku,rating,when\n"},  # a header and no rows
    ],
    ids=["no table", "empty file", "header only"],
)
def test_a_catalogue_without_interactions_loads(tmp_path: Path, spec_or_file: dict) -> None:
    data = load_folder(write_folder(tmp_path, **spec_or_file))
    assert list(data.items["item_id"]) == ["1", "2", "3"]
    assert list(data.users["user_id"]) == ["a", "b"]
    assert data.interactions.empty and data.positives().empty
    assert list(data.interactions.columns) == ["user_id", "item_id", "value", "timestamp"]
