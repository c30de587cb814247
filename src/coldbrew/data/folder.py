"""A dataset folder anyone can bring: items, optional users, interactions, and a ``dataset.toml``.

```toml
name = "shop"                  # optional, defaults to the folder name
language = "en"                # optional: "en", "zh", "multi"...; detected from the items if absent

[items]
file = "items.jsonl"           # .csv, .tsv, .jsonl or .parquet
id = "item_id"
text = ["title", "description"]
attributes = ["category", "price"]
encoding = "utf-8"             # optional; e.g. "latin-1" for old CSV exports

[users]                        # optional table
file = "users.csv"
id = "user_id"
text = ["about"]
attributes = ["age", "occupation"]

[interactions]                 # optional: a new catalogue has none yet (an empty file too)
file = "interactions.csv"
user = "user_id"
item = "item_id"
value = "rating"               # optional
timestamp = "ts"               # optional: seconds since 1970 or ISO dates
positive_threshold = 4         # optional: value >= 4 is a positive; omit for implicit data
context = ["country", "ts"]    # optional: columns each event keeps as its context; the
                               # timestamp column becomes "time". Or a table naming the keys:
                               # context = { location = "country", time = "ts" }
```
"""

from __future__ import annotations

import csv
import io
import json
import tomllib
from pathlib import Path
from typing import Any

from coldbrew.data.cleaning import (
    FILE,
    LINE,
    OnBadRows,
    build_dataset,
    require_columns,
    with_source,
)
from coldbrew.data.frames import pd
from coldbrew.data.problems import BadRowsError, DataError, RowProblem
from coldbrew.data.schema import Dataset, DatasetSpec

SPEC_FILE = "dataset.toml"
_KEYS = {
    "": {"name", "language", "items", "users", "interactions"},
    "items": {"file", "id", "text", "attributes", "encoding"},
    "users": {"file", "id", "text", "attributes", "encoding"},
    "interactions": {
        "file",
        "user",
        "item",
        "value",
        "timestamp",
        "positive_threshold",
        "encoding",
        "context",
    },
}
_NO_INTERACTIONS_TABLE = {"user": "user_id", "item": "item_id"}
"""The interactions of a folder whose ``dataset.toml`` has no ``[interactions]`` table."""
_INTERACTION_COLUMNS = ("user", "item", "value", "timestamp")
_REQUIRED = {
    "items": ("file", "id"),
    "users": ("file", "id"),
    "interactions": ("file", "user", "item"),
}


def _spec_problem(path: Path, field: str, reason: str) -> DataError:
    return DataError([RowProblem(str(path), None, field, reason)])


def read_spec(path: Path) -> dict[str, Any]:
    """Parse and check ``dataset.toml``: unknown or missing keys are errors naming the key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise _spec_problem(path, "", f"not valid TOML: {exc}") from None
    for table, allowed in _KEYS.items():
        section = raw if not table else raw.get(table, {})
        if not isinstance(section, dict):
            raise _spec_problem(path, table, "must be a table like [items]")
        unknown = set(section) - allowed
        if unknown:
            raise _spec_problem(
                path,
                table or "top level",
                f"unknown keys {sorted(unknown)}; known: {sorted(allowed)}",
            )
    if "items" not in raw:
        raise _spec_problem(path, "items", "missing the [items] table")
    for table, keys in _REQUIRED.items():
        for key in keys:
            if table in raw and key not in raw[table]:
                raise _spec_problem(path, f"{table}.{key}", "required key is missing")
    return raw


def read_table(
    path: Path, encoding: str = "utf-8", on_bad_rows: OnBadRows = "raise"
) -> pd.DataFrame:
    """One CSV/TSV/JSONL/Parquet file, every row tagged with its file and line."""
    if not path.exists():
        raise DataError([RowProblem(str(path), None, None, "file not found")])
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return with_source(pd.read_parquet(path), path.name)
    text = _decode(path, encoding)
    if not text.strip():  # an empty file: no rows (and no columns)
        return with_source(pd.DataFrame(), path.name)
    if suffix in (".jsonl", ".ndjson"):
        return _read_jsonl(path.name, text, on_bad_rows)
    if suffix in (".csv", ".tsv", ".txt"):
        sep = "\t" if suffix == ".tsv" else ","
        try:
            frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise DataError([RowProblem(path.name, None, None, f"cannot parse: {exc}")]) from None
        frame = with_source(frame.replace({"": None}), path.name, first_line=2)
        lines = _record_lines(text, sep)
        if len(lines) == len(frame) + 1:  # else the simple count: the header, then a row a line
            frame[LINE] = lines[1:]
        return frame
    raise DataError(
        [
            RowProblem(
                path.name, None, None, "unsupported format; use .csv, .tsv, .jsonl or .parquet"
            )
        ]
    )


def _decode(path: Path, encoding: str) -> str:
    data = path.read_bytes()
    try:
        return data.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            [
                RowProblem(
                    path.name,
                    line,
                    None,
                    f"not valid {encoding} (byte 0x{data[exc.start]:02x}); if the file is in "
                    'another encoding, name it, e.g. encoding = "latin-1" in dataset.toml',
                )
            ]
        ) from None
    except LookupError:
        raise DataError(
            [RowProblem(path.name, None, "encoding", f"unknown encoding {encoding!r}")]
        ) from None


def _record_lines(text: str, sep: str) -> list[int]:
    """The line each CSV record starts on, header first, leaving out blank lines as pandas does
    (a quoted value may span lines, so records and lines differ); ``[]`` if it cannot parse."""
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    starts, end = [], 0
    try:
        for record in reader:
            if record and (len(record) > 1 or record[0].strip()):
                starts.append(end + 1)
            end = reader.line_num
    except csv.Error:
        return []
    return starts


def _read_jsonl(name: str, text: str, on_bad_rows: OnBadRows) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    problems: list[RowProblem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(RowProblem(name, number, None, f"not valid JSON: {exc.msg}"))
            continue
        if not isinstance(row, dict):
            problems.append(RowProblem(name, number, None, "expected a JSON object per line"))
            continue
        row["_file"], row["_line"] = name, number
        rows.append(row)
    if problems and on_bad_rows == "raise":
        raise BadRowsError(problems)
    frame = pd.DataFrame(rows)
    frame.attrs["problems"] = problems
    return frame


def _strings(raw: dict[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key, ())
    return (value,) if isinstance(value, str) else tuple(value)


def context_columns(path: Path, cfg: dict[str, Any]) -> dict[str, str]:
    """The interactions' ``context``: key -> column (a list keeps the column names as keys,
    the timestamp column's as ``time``)."""
    raw = cfg.get("context", {})
    if isinstance(raw, str | list):
        return {("time" if c == cfg.get("timestamp") else c): c for c in _strings(cfg, "context")}
    if not isinstance(raw, dict) or not all(isinstance(c, str) for c in raw.values()):
        raise _spec_problem(
            path, "interactions.context", 'a list of columns, or a table like {location = "x"}'
        )
    return dict(raw)


def load_folder(path: str | Path, on_bad_rows: OnBadRows = "raise") -> Dataset:
    """Read a dataset folder described by its ``dataset.toml`` (see the module docstring)."""
    folder = Path(path)
    spec_path = folder / SPEC_FILE if folder.is_dir() else folder
    folder = spec_path.parent
    if not spec_path.exists():
        raise DataError(
            [
                RowProblem(
                    str(spec_path),
                    None,
                    None,
                    "no dataset.toml here; see the README's dataset format",
                )
            ]
        )
    raw = read_spec(spec_path)
    item_cfg, user_cfg = raw["items"], raw.get("users")
    inter_cfg = raw.get("interactions", _NO_INTERACTIONS_TABLE)
    context = context_columns(spec_path, inter_cfg)

    def table(cfg: dict[str, Any], role: str) -> pd.DataFrame:
        frame = read_table(folder / cfg["file"], cfg.get("encoding", "utf-8"), on_bad_rows)
        named = [cfg["id"]] if "id" in cfg else [cfg[k] for k in _INTERACTION_COLUMNS if k in cfg]
        named += [*_strings(cfg, "text"), *_strings(cfg, "attributes")]
        named += list(context.values()) if role == "interactions" else []
        if frame.empty and not len(frame.columns.difference([FILE, LINE])):
            return frame.reindex(columns=[*named, FILE, LINE])  # an empty file: no rows
        problems = require_columns(frame, named, role, source=SPEC_FILE)
        if problems:
            raise DataError(problems)
        return frame

    items = table(item_cfg, "items")
    users = table(user_cfg, "users") if user_cfg else None
    interactions = (
        table(inter_cfg, "interactions")
        if "interactions" in raw
        else pd.DataFrame(columns=[inter_cfg["user"], inter_cfg["item"]])
    )
    spec = DatasetSpec(
        name=raw.get("name", folder.resolve().name),
        item_text=_strings(item_cfg, "text"),
        item_attributes=_strings(item_cfg, "attributes"),
        user_text=_strings(user_cfg or {}, "text"),
        user_attributes=_strings(user_cfg or {}, "attributes"),
        positive_threshold=inter_cfg.get("positive_threshold"),
        language=raw.get("language", "auto"),
    )
    dataset = build_dataset(
        spec,
        items,
        interactions,
        users,
        item_id=item_cfg["id"],
        user_id=(user_cfg or {}).get("id", "user_id"),
        inter_user=inter_cfg["user"],
        inter_item=inter_cfg["item"],
        inter_value=inter_cfg.get("value"),
        inter_timestamp=inter_cfg.get("timestamp"),
        inter_context=context,
        on_bad_rows=on_bad_rows,
    )
    parse_problems = [
        p
        for frame in (items, users, interactions)
        if frame is not None
        for p in frame.attrs.get("problems", [])
    ]
    if dataset.report is not None and parse_problems:
        dataset.report.skipped[:0] = parse_problems
    return dataset
