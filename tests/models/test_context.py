"""Context in queries (issue 26): the parser, the features it derives, and the CLI flags."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from coldbrew.cli.main import main
from coldbrew.data import SAMPLE_DIR, DataError, load_folder
from coldbrew.data.schema import CONTEXT
from coldbrew.models import UserQuery
from coldbrew.models.context import context_features, describe_features, parse_context
from folders import SPEC, write_folder


def test_time_location_and_any_other_key_become_features() -> None:
    query = UserQuery(
        context={"time": "2011-06-04T09:30:00", "location": " France ", "weather": "Rain"}
    )
    assert query.context["location"] == "France"  # checked and stripped once, on the query
    assert context_features(query.context) == {
        "hour_band": "morning",
        "weekday": "saturday",
        "season": "summer",
        "location": "france",
        "weather": "rain",
    }


def test_epoch_seconds_are_read_in_utc_and_an_offset_on_its_own_clock() -> None:
    assert context_features({"time": 1307179800})["hour_band"] == "morning"  # 09:30 UTC
    late = context_features({"time": "2011-06-04T23:30:00+02:00"})
    assert (late["hour_band"], late["weekday"]) == ("evening", "saturday")
    assert context_features({"time": "2011-01-03T03:00:00"})["season"] == "winter"


def test_only_what_the_context_carries_is_derived() -> None:
    assert context_features({"location": "UK"}) == {"location": "uk"}
    assert context_features({"text": "rainy evening, with kids"}) == {}
    assert context_features({}) == {}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"time": "yesterday"}, "context.time"),
        ({"time": float("nan")}, "context.time"),
        ({"time": 1e12}, "context.time"),
        ({"device": ["a", "b"]}, "context.device"),
        ({"location": "x" * 201}, "context.location"),
        ({f"k{n}": n for n in range(21)}, "context"),
    ],
)
def test_bad_values_raise_naming_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        parse_context(raw)
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        UserQuery(context=raw)


def test_features_read_as_words() -> None:
    words = describe_features(context_features({"time": "2011-06-04T09:30", "location": "france"}))
    assert words == "on Saturday mornings in summer in France"


def test_the_cli_takes_context_pairs_and_text(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["recommend", "--data", str(SAMPLE_DIR), "--encoder", "hashing", "--json"]
    argv += ["--cache-dir", str(tmp_path), "-k", "2"]
    code = main([*argv, "--context", "time=1307179800", "--context-text", "rainy evening"])
    assert code == 0 and len(json.loads(capsys.readouterr().out)) == 2
    assert main([*argv, "--context", "time=someday"]) == 2
    err = capsys.readouterr().err
    assert "context.time" in err and "Traceback" not in err
    assert main([*argv, "--context", "location"]) == 2
    assert "--context expects KEY=VALUE" in capsys.readouterr().err


EVENTS_WITH_PLACE = """uid,sku,rating,when,country
a,1,5,1700000000,France
a,3,4,2024-01-02T10:00:00,
b,2,5,1700000100,UK
"""


@pytest.mark.parametrize(
    ("spec_line", "key"),
    [
        ('context = ["country", "when"]', "country"),
        ('context = {location = "country", time = "when"}', "location"),
    ],
)
def test_a_folder_names_its_context_columns(tmp_path: Path, spec_line: str, key: str) -> None:
    spec = SPEC.replace('timestamp = "when"', f'timestamp = "when"\n{spec_line}')
    files = {"dataset.toml": spec, "events.csv": EVENTS_WITH_PLACE}
    data = load_folder(write_folder(tmp_path, **files))
    iso = pd.Timestamp("2024-01-02T10:00:00", tz="UTC").timestamp()
    assert list(data.interactions[CONTEXT]) == [
        {"time": 1700000000.0, key: "France"},
        {"time": iso},  # an empty value is left out
        {"time": 1700000100.0, key: "UK"},
    ]
    pytest.importorskip("fastapi", reason="the importer is the service's")
    from coldbrew.live.importer import interaction_records

    records = interaction_records(data)  # what `coldbrew ingest` stores
    assert [r.context for r in records] == list(data.interactions[CONTEXT])


def test_a_bad_context_time_is_a_bad_row_naming_its_column(tmp_path: Path) -> None:
    spec = SPEC.replace('timestamp = "when"', 'context = {time = "at"}')
    events = "uid,sku,rating,at\na,1,5,2011-06-04T09:30\nb,2,5,someday\n"
    with pytest.raises(DataError, match=r"events.csv, line 3 \[at\]: not a context time"):
        load_folder(write_folder(tmp_path, **{"dataset.toml": spec, "events.csv": events}))
