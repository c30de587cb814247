"""Turn raw tables into a clean :class:`Dataset`: normalise text, check ids and types, report.

Every reader (generic folder, benchmark loaders) ends here, so every dataset is cleaned the same
way. Raw tables carry two bookkeeping columns, ``_file`` and ``_line``, so a rejected row is named
exactly where the user can find it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from coldbrew.data.frames import pd
from coldbrew.data.problems import BadRowsError, DataError, LoadReport, RowProblem
from coldbrew.data.schema import (
    CONTEXT,
    INTERACTION_COLUMNS,
    ITEM_ID,
    TIMESTAMP,
    USER_ID,
    VALUE,
    Dataset,
    DatasetSpec,
    empty_users,
)

FILE = "_file"
LINE = "_line"
OnBadRows = Literal["raise", "skip"]
_SPACES = re.compile(r"\s+")


def normalize_text(value: Any) -> Any:
    """NFC unicode and single spaces; non-strings pass through unchanged."""
    if not isinstance(value, str):
        return value
    return _SPACES.sub(" ", unicodedata.normalize("NFC", value)).strip()


def with_source(frame: pd.DataFrame, file: str, first_line: int = 1) -> pd.DataFrame:
    """Tag each row with its file and line number (``first_line`` is the first data row's)."""
    return frame.assign(**{FILE: file, LINE: np.arange(first_line, first_line + len(frame))})


@dataclass
class _Checker:
    """Collects row problems and the mask of rows that survive."""

    frame: pd.DataFrame
    problems: list[RowProblem]

    def __post_init__(self) -> None:
        self.keep = np.ones(len(self.frame), dtype=bool)

    def reject(self, mask: np.ndarray | pd.Series, field: str | None, reason: str) -> None:
        mask = np.asarray(mask, dtype=bool) & self.keep
        for position in np.flatnonzero(mask):
            row = self.frame.iloc[position]
            line = row.get(LINE)
            self.problems.append(
                RowProblem(
                    str(row.get(FILE, "?")),
                    None if line is None or pd.isna(line) else int(line),
                    field,
                    reason,
                )
            )
        self.keep &= ~mask

    def result(self) -> pd.DataFrame:
        return self.frame[self.keep].reset_index(drop=True)


def require_columns(
    frame: pd.DataFrame, columns: list[str], role: str, source: str = ""
) -> list[RowProblem]:
    """One problem per column of ``columns`` that ``frame`` lacks, naming its file, the column
    and the columns it does have (``source``: where the column was named, e.g. dataset.toml)."""
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if not missing:
        return []
    file = str(frame[FILE].iloc[0]) if FILE in frame and len(frame) else role
    have = [c for c in frame.columns if c not in (FILE, LINE)]
    named = f" (named in {source})" if source else ""
    return [
        RowProblem(file, None, c, f"missing column {c!r} for {role}{named}; the file has {have}")
        for c in missing
    ]


def _ids(series: pd.Series) -> pd.Series:
    """Ids as clean strings: ``42``, ``42.0`` and ``" 42 "`` are the same id."""

    def one(value: Any) -> Any:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = normalize_text(str(value))
        return text or None

    return series.map(one)


def _numbers(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Floats, and the mask of values that were given but are not numbers."""
    given = series.notna() & (series.astype(str).str.strip() != "")
    numbers = pd.to_numeric(series.where(given), errors="coerce")
    return numbers.astype("float64"), np.array(given & numbers.isna(), dtype=bool)


def _timestamps(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Seconds since the epoch from numbers or ISO dates; the mask of unparseable values."""
    numbers, bad = _numbers(series)
    if bad.any():
        dates = pd.to_datetime(series[bad], errors="coerce", utc=True, format="ISO8601")
        ok = dates.notna().to_numpy()
        seconds = (dates[ok] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        numbers.loc[seconds.index] = seconds
        bad_positions = np.flatnonzero(bad)
        bad[bad_positions[ok]] = False
    return numbers, bad


def _check_entities(
    frame: pd.DataFrame,
    id_col: str,
    text_fields: tuple[str, ...],
    problems: list[RowProblem],
    *,
    role: str,
    need_text: bool,
) -> pd.DataFrame:
    missing = require_columns(frame, [id_col], role)
    if missing:
        problems += missing
        return frame
    frame = frame.rename(columns={id_col: ITEM_ID if role == "items" else USER_ID})
    key = ITEM_ID if role == "items" else USER_ID
    for column in frame.columns:
        if column != FILE and (
            frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column])
        ):
            frame[column] = frame[column].map(normalize_text)
    frame[key] = _ids(frame[key])
    check = _Checker(frame, problems)
    check.reject(frame[key].isna().to_numpy(), id_col, "empty id")  # the file's own column
    check.reject(frame[key].duplicated().to_numpy(), id_col, "duplicate id (first one kept)")
    present = [f for f in text_fields if f in frame]
    if need_text and text_fields:
        if not present:
            problems += require_columns(frame, list(text_fields), role)
            return frame
        has_text = np.zeros(len(frame), dtype=bool)
        for f in present:
            values = frame[f]
            has_text |= (values.notna() & (values.astype(str).str.strip() != "")).to_numpy()
        check.reject(~has_text, "/".join(present), "empty text: every text field is empty")
    return check.result()


def _contexts(
    inter: pd.DataFrame,
    frame: pd.DataFrame,
    named: Mapping[str, str],
    inter_timestamp: str | None,
    check: _Checker,
) -> list[dict[str, Any] | None]:
    """Each event's context: key -> its column's value (a ``time`` in seconds since 1970; the
    timestamp column's as already parsed), leaving out empty values; ``None`` with none.
    Unreadable times are bad rows."""
    columns: dict[str, pd.Series] = {}
    for key, column in named.items():
        if column == inter_timestamp:
            columns[key] = frame[TIMESTAMP]
        elif key == "time":
            columns[key], bad = _timestamps(inter[column])
            check.reject(bad, column, "not a context time (seconds or an ISO date)")
        else:
            columns[key] = inter[column].map(normalize_text)
    table = pd.DataFrame(columns).reset_index(drop=True)
    rows = table.astype(object).where(table.notna() & (table.astype(str) != ""), None)
    return [
        {k: v for k, v in row.items() if v is not None} or None
        for row in rows.to_dict(orient="records")
    ]


def build_dataset(
    spec: DatasetSpec,
    items: pd.DataFrame,
    interactions: pd.DataFrame,
    users: pd.DataFrame | None = None,
    *,
    item_id: str = ITEM_ID,
    user_id: str = USER_ID,
    inter_user: str = USER_ID,
    inter_item: str = ITEM_ID,
    inter_value: str | None = VALUE,
    inter_timestamp: str | None = TIMESTAMP,
    inter_context: Mapping[str, str] | None = None,
    on_bad_rows: OnBadRows = "raise",
    users_are_closed: bool = True,
) -> Dataset:
    """Validate and clean raw tables (tagged by :func:`with_source`) into a :class:`Dataset`.

    Structural problems (missing columns) always raise :class:`DataError`. Bad rows raise too
    with ``on_bad_rows="raise"``; with ``"skip"`` they are left out and listed in
    ``dataset.report``. Unknown item ids in interactions are bad rows; unknown user ids are bad
    rows only when a users table is given and ``users_are_closed``. ``inter_context`` names
    context keys and the interaction columns they come from (``{"location": "Country",
    "time": "ts"}``): each event's are gathered into its ``context`` dict (see
    :func:`_contexts`).
    """
    problems: list[RowProblem] = []
    items = _check_entities(
        items.copy(), item_id, spec.item_text, problems, role="items", need_text=True
    )
    if users is not None:
        users = _check_entities(
            users.copy(), user_id, spec.user_text, problems, role="users", need_text=False
        )
    wanted = [inter_user, inter_item] + [c for c in (inter_value, inter_timestamp) if c]
    wanted += list((inter_context or {}).values())
    structural = [p for p in problems if p.line is None]
    structural += require_columns(interactions, wanted, "interactions")
    if structural:
        raise DataError(structural)

    inter = interactions.copy()
    frame = pd.DataFrame(
        {
            USER_ID: _ids(inter[inter_user]),
            ITEM_ID: _ids(inter[inter_item]),
            FILE: inter.get(FILE, "interactions"),
            LINE: inter[LINE] if LINE in inter else np.arange(1, len(inter) + 1),
        }
    )
    check = _Checker(frame, problems)
    check.reject(frame[USER_ID].isna().to_numpy(), inter_user, "empty user id")
    check.reject(frame[ITEM_ID].isna().to_numpy(), inter_item, "empty item id")
    if inter_value:
        frame[VALUE], bad = _numbers(inter[inter_value])
        check.reject(bad, inter_value, "not a number")
    else:
        frame[VALUE] = np.nan
    if inter_timestamp:
        frame[TIMESTAMP], bad = _timestamps(inter[inter_timestamp])
        check.reject(bad, inter_timestamp, "not a timestamp (seconds or an ISO date)")
    else:
        frame[TIMESTAMP] = np.nan
    if inter_context:
        frame[CONTEXT] = _contexts(inter, frame, inter_context, inter_timestamp, check)
    known_items = set(items[ITEM_ID])
    check.reject(~frame[ITEM_ID].isin(known_items).to_numpy(), inter_item, "unknown item id")
    if users is not None and users_are_closed and len(users):
        known_users = set(users[USER_ID])
        check.reject(~frame[USER_ID].isin(known_users).to_numpy(), inter_user, "unknown user id")
    frame = check.result()

    if problems and on_bad_rows == "raise":
        raise BadRowsError(problems)
    report = LoadReport(skipped=problems)
    before = len(frame)
    frame = frame.drop_duplicates(subset=list(INTERACTION_COLUMNS)).reset_index(drop=True)
    columns = [*INTERACTION_COLUMNS, *([CONTEXT] if inter_context else [])]
    report.duplicates_dropped = before - len(frame)

    def public(table: pd.DataFrame) -> pd.DataFrame:
        return table.drop(columns=[c for c in (FILE, LINE) if c in table]).reset_index(drop=True)

    return Dataset(
        spec,
        public(items),
        public(frame)[columns],
        public(users) if users is not None else empty_users(),
        report=report,
    )
