"""``coldbrew demo`` and ``coldbrew serve`` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from coldbrew.cli.main import build_parser, main
from coldbrew.store import Store


def test_demo_prints_every_mode_and_the_new_item(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "demo.sqlite"
    assert main(["demo", "--encoder", "hashing", "--db", str(db), "--no-serve", "-k", "2"]) == 0
    out = capsys.readouterr().out
    for label in ("free text (English)", "free text (Chinese)", "attributes only", "two clicks"):
        assert label in out
    assert "why:" in out
    assert "new item 'Packable rain jacket' reaches existing users" in out
    assert "model: hybrid v000001, learned from" in out  # the service's own hybrid
    assert "encoder: hashing-256+script-centred:" in out  # the name, not an object
    assert "People who liked “" in out  # a known user's reason cites CF where CF decided
    store = Store(str(db))
    assert {i.item_id for i in store.items()} >= {"en-001", "zh-013", "new-001"}
    assert len(store.users()) == 46 and len(store.interactions()) == 239
    store.close()
    assert (tmp_path / "demo.sqlite.models" / "CURRENT").read_text().strip() == "v000001"
    # loading again is idempotent: upserts by id
    assert main(["demo", "--encoder", "hashing", "--db", str(db), "--no-serve"]) == 0
    store = Store(str(db))
    assert store.counts()["interactions"] == 239
    store.close()


def test_serve_command_is_registered() -> None:
    args = build_parser().parse_args(["serve", "--db", "x.sqlite", "--port", "9001"])
    assert (args.db, args.port, args.host) == ("x.sqlite", 9001, "127.0.0.1")
    assert args.durability == "normal"
    full = build_parser().parse_args(["serve", "--durability", "full"])
    assert full.durability == "full"
