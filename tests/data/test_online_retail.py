"""The online-retail loader: its cleaning on a tiny file with every trap of the real one, and the
real file's counts (slow, skipped without the data)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from coldbrew.data import load_dataset
from coldbrew.data.benchmarks import DatasetNotFoundError, data_root, load_online_retail

UK, ICELAND = "United Kingdom", "Iceland"
HEART, PARASOL = "WHITE HANGING HEART T-LIGHT HOLDER", "EDWARDIAN PARASOL BLACK"
COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "CustomerID"]
COLUMNS += ["Country"]
LINES = [
    ("536365", "85123A", HEART + " ", 6, "12-01 08:26", 17850.0, UK),
    ("536365", "POST", "POSTAGE", 1, "12-01 08:26", 17850.0, UK),
    ("536366", "15056bl", PARASOL, 2, "12-01 09:00", 17850.0, UK),
    ("536367", "15056BL", PARASOL, 1, "12-02 10:00", 12347.0, ICELAND),
    ("536368", "20713", "found", 5, "12-02 11:00", None, UK),
    ("536369", "20713", "found", 7, "12-02 12:00", None, UK),
    ("536370", "20713", "  JUMBO  BAG OWLS", 10, "12-03 11:00", 12347.0, ICELAND),
    ("C536371", "85123A", HEART, -6, "12-03 12:00", 12347.0, ICELAND),
    ("536372", "85123A", HEART, -3, "12-03 13:00", None, UK),
    ("536373", "85123A", HEART, 4, "12-05 09:00", 17850.0, UK),
    ("536374", "gift_0001_20", "Gift Voucher Â£20.00", 1, "12-05 10:00", 12347.0, ICELAND),
    ("536375", "99999", "damaged", 1, "12-06 10:00", 12347.0, ICELAND),
    ("536376", "90000", "RETRO Â£5 SIGN", 1, "12-07 10:00", 12347.0, "Portugal"),
    ("536377", "77777", "PEN", 1, "12-08 10:00", None, UK),
]  # fmt: skip
"""A C invoice, a postage code, a lower-case duplicate code, staff notes more frequent than the
title, a missing customer, a stock adjustment, a repeat purchase, a voucher, a product with
only a staff note, mojibake, a customer in two countries, a product nobody bought."""


def _seconds(when: str) -> float:
    return float((pd.Timestamp(f"2010-{when}:00") - pd.Timestamp(0)).total_seconds())


def write_retail(root: Path) -> Path:
    folder = root / "online-retail"
    folder.mkdir(parents=True)
    lines = pd.DataFrame(LINES, columns=COLUMNS)
    lines["InvoiceDate"] = "2010-" + lines["InvoiceDate"] + ":00"  # the file's string dates
    lines.insert(5, "UnitPrice", 1.25)
    lines.to_parquet(folder / "online_retail.parquet")
    return root


def test_cleaning_keeps_products_sales_and_first_purchases_only(tmp_path: Path) -> None:
    data = load_dataset("online-retail", data_root=write_retail(tmp_path))
    assert data.name == "online-retail" and data.spec.positive_threshold is None
    titles = dict(zip(data.items["item_id"], data.items["title"]))
    assert titles == {
        "15056BL": "EDWARDIAN PARASOL BLACK",
        "20713": "JUMBO BAG OWLS",
        "77777": "PEN",
        "85123A": "WHITE HANGING HEART T-LIGHT HOLDER",
        "90000": "RETRO £5 SIGN",
    }
    inter = data.interactions
    got = list(zip(inter["user_id"], inter["item_id"], inter["timestamp"]))
    assert got == [
        ("17850", "85123A", _seconds("12-01 08:26")),  # first purchase, not the repeat
        ("17850", "15056BL", _seconds("12-01 09:00")),
        ("12347", "15056BL", _seconds("12-02 10:00")),
        ("12347", "20713", _seconds("12-03 11:00")),
        ("12347", "90000", _seconds("12-07 10:00")),
    ]
    assert set(inter["value"]) == {1.0}
    assert len(data.positives()) == len(inter)
    assert dict(zip(data.users["user_id"], data.users["country"])) == {
        "12347": ICELAND,  # three Iceland sales, one Portugal
        "17850": UK,
    }
    assert data.spec.user_attributes == ("country",)


def test_with_context_each_purchase_keeps_its_own_time_and_country(tmp_path: Path) -> None:
    """Issue 26: the sale line's country (not the customer's most frequent one) and time."""
    plain = load_dataset("online-retail", data_root=write_retail(tmp_path))
    data = load_online_retail(tmp_path, context=True)
    assert "context" not in plain.interactions
    got = list(zip(data.interactions["item_id"], data.interactions["context"]))
    assert got[-1] == ("90000", {"time": _seconds("12-07 10:00"), "location": "Portugal"})
    assert got[0] == ("85123A", {"time": _seconds("12-01 08:26"), "location": UK})
    assert data.interactions.drop(columns="context").equals(plain.interactions)


def test_missing_file_says_where(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"online_retail\.parquet"):
        load_dataset("online-retail", data_root=tmp_path)


@pytest.mark.slow
def test_real_file_counts() -> None:
    try:
        data = load_dataset("online-retail", data_root=data_root())
    except DatasetNotFoundError as exc:
        pytest.skip(str(exc))
    assert (len(data.items), len(data.users), len(data.interactions)) == (3806, 4335, 266160)
    assert not data.interactions.duplicated(["user_id", "item_id"]).any()
    titles = data.items.set_index("item_id")["title"]
    assert titles["20713"] == "JUMBO BAG OWLS" and titles["15056BL"] == "EDWARDIAN PARASOL BLACK"
    assert not data.items["item_id"].isin(["POST", "DOT", "M", "BANK CHARGES"]).any()
    assert data.users["country"].value_counts().index[0] == "United Kingdom"
